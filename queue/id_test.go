package queue

import (
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIDGen_UniqueShortSortedUnderLoad(t *testing.T) {
	t.Parallel()
	const goroutines, each = 8, 20000
	var g idGen
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC) // a stopped clock: the worst case
	ids := make([][]ID, goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ids[i] = append(ids[i], g.next(now))
			}
		}()
	}
	wg.Wait()
	seen := make(map[ID]bool, goroutines*each)
	for _, list := range ids {
		if !sort.SliceIsSorted(list, func(a, b int) bool { return list[a] < list[b] }) {
			t.Errorf("IDs from one goroutine are not increasing")
		}
		for _, id := range list {
			if seen[id] {
				t.Fatalf("duplicate queue ID %s", id)
			}
			seen[id] = true
			if !id.Valid() || len(id) != idLen {
				t.Fatalf("queue ID %q: want %d characters of 0-9A-Z", id, idLen)
			}
		}
	}
}

func TestIDGen_RestartDoesNotRepeat(t *testing.T) {
	t.Parallel()
	// Two generators (two process lifetimes) at the same instant, as after
	// a restart with the clock stepped back: the random part separates them.
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	var a, b idGen
	seen := map[ID]bool{}
	for range 1000 {
		for _, id := range []ID{a.next(now), b.next(now)} {
			if seen[id] {
				t.Fatalf("queue ID %s repeated across generators", id)
			}
			seen[id] = true
		}
	}
}

func TestID_Valid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   ID
		want bool
	}{
		{"1LV5ZRD340HU4KX", true},
		{"A", true},
		{"0123456789ABCDEF", true},
		{"0123456789ABCDEFG", false}, // 17 characters
		{"", false},
		{"1lv5zrd340hu4kx", false},
		{"../etc/passwd", false},
		{"ABC.env", false},
		{"ABC DEF", false},
	}
	for _, tt := range tests {
		if got := tt.id.Valid(); got != tt.want {
			t.Errorf("ID(%q).Valid() = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestIDGen_TimePartSorts(t *testing.T) {
	t.Parallel()
	var g idGen
	early := g.next(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	late := g.next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if strings.Compare(string(early), string(late)) >= 0 {
		t.Errorf("ID %s (2025) does not sort before %s (2026)", early, late)
	}
}
