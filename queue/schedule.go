package queue

import (
	"container/heap"
	"time"
)

// schedule is a min-heap of messages by due time (then queue ID, so equal
// times go in arrival order). The scheduler sleeps until the earliest one
// is due instead of scanning every message, as Postfix's qmgr sleeps on
// its deferred-queue scan timer. Guarded by Queue.mu.
type schedule []*message

func (s schedule) Len() int { return len(s) }
func (s schedule) Less(i, j int) bool {
	if !s[i].due.Equal(s[j].due) {
		return s[i].due.Before(s[j].due)
	}
	return s[i].id < s[j].id
}
func (s schedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index = i
	s[j].index = j
}
func (s *schedule) Push(x any) {
	m := x.(*message)
	m.index = len(*s)
	*s = append(*s, m)
}
func (s *schedule) Pop() any {
	old := *s
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	m.index = -1
	return m
}

// scheduleLocked puts m on the schedule at due, or moves it there.
// q.mu must be held.
func (q *Queue) scheduleLocked(m *message, due time.Time) {
	m.due = due
	if m.index >= 0 {
		heap.Fix(&q.sched, m.index)
		return
	}
	heap.Push(&q.sched, m)
}

// unscheduleLocked takes m off the schedule. q.mu must be held.
func (q *Queue) unscheduleLocked(m *message) {
	if m.index >= 0 {
		heap.Remove(&q.sched, m.index)
	}
}

// popDueLocked returns the earliest message if it is due at now, else nil
// and when the earliest one is due (zero when none is scheduled).
func (q *Queue) popDueLocked(now time.Time) (*message, time.Time) {
	if len(q.sched) == 0 {
		return nil, time.Time{}
	}
	m := q.sched[0]
	if m.due.After(now) {
		return nil, m.due
	}
	heap.Pop(&q.sched)
	return m, time.Time{}
}
