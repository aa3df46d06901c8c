package queue

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingFS counts directory fsyncs, to show what group commit saves;
// with noSync it skips every fsync (for building large spools quickly).
type countingFS struct {
	osFS
	dir      string
	noSync   bool
	dirSyncs atomic.Int64
}

func (c *countingFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := c.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, fs: c, isDir: name == c.dir}, nil
}

type countingFile struct {
	File
	fs    *countingFS
	isDir bool
}

func (f *countingFile) Sync() error {
	if f.isDir {
		f.fs.dirSyncs.Add(1)
	}
	if f.fs.noSync {
		return nil
	}
	return f.File.Sync()
}

// benchHeader is a typical prepended header: Received plus an RSA-2048
// DKIM-Signature.
var benchHeader = []byte("Received: from client.example (client.example [192.0.2.7])\r\n\tby mail.example.org (smarthost) with ESMTPSA id 1LV5ZRD340HU4KX\r\n\tfor <bob@example.net>; Tue, 04 Mar 2025 10:00:00 +0000\r\n" +
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=example.com; s=default;\r\n\th=from:to:subject:date:message-id; bh=" + strings.Repeat("A", 44) + ";\r\n\tb=" + strings.Repeat("B", 344) + "\r\n")

func benchQueue(b *testing.B, fsys *countingFS) *Queue {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "queue")
	if fsys != nil {
		fsys.dir = dir
	}
	opts := Options{Dir: dir, Hostname: "mail.example.org", Retry: []time.Duration{time.Minute},
		MaxLifetime: time.Hour, Concurrency: 1, Deliverer: &fakeDeliverer{}}
	if fsys != nil {
		opts.FS = fsys
	}
	q, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	return q
}

func benchCommit(b *testing.B, q *Queue, body []byte) {
	d, err := q.Create()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.Write(body); err != nil {
		b.Fatal(err)
	}
	if err := d.Commit(testEnvelope(), benchHeader); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCommit measures durable commits (two file fsyncs and a share of
// a directory fsync each) from one session and from 64 concurrent ones,
// where group commit shares directory fsyncs.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KiB", 1 << 10}, {"100KiB", 100 << 10}} {
		body := []byte(strings.Repeat("x", size.bytes-2) + "\r\n")
		b.Run(size.name+"/serial", func(b *testing.B) {
			fsys := &countingFS{}
			q := benchQueue(b, fsys)
			b.SetBytes(int64(size.bytes))
			for b.Loop() {
				benchCommit(b, q, body)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(fsys.dirSyncs.Load())/float64(b.N), "dirsyncs/commit")
		})
		b.Run(size.name+"/parallel64", func(b *testing.B) {
			fsys := &countingFS{}
			q := benchQueue(b, fsys)
			b.SetBytes(int64(size.bytes))
			// RunParallel starts parallelism×GOMAXPROCS goroutines.
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchCommit(b, q, body)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(fsys.dirSyncs.Load())/float64(b.N), "dirsyncs/commit")
		})
	}
}

// BenchmarkOpen measures start-up (recovery) with 10,000 and 100,000
// queued messages: one directory read, one record read and decode per
// message; no message data is read. heap-B/msg is the live heap the loaded
// queue holds per message, which must stay the size of an envelope (a few
// hundred bytes), however large the messages are.
func BenchmarkOpen(b *testing.B) {
	for _, messages := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(messages), func(b *testing.B) {
			fsys := &countingFS{noSync: true}
			q := benchQueue(b, fsys)
			body := []byte(testBody)
			for range messages {
				benchCommit(b, q, body)
			}
			opts := q.opts
			opts.FS = nil
			q.Close()
			var heap uint64
			b.ResetTimer()
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				q, err := Open(opts)
				if err != nil {
					b.Fatal(err)
				}
				if n := len(q.msgs); n != messages {
					b.Fatalf("Open loaded %d messages, want %d", n, messages)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
				q.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/open")
			b.ReportMetric(float64(heap)/float64(messages), "heap-B/msg")
		})
	}
}
