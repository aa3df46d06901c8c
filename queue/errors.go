package queue

import "errors"

// ErrStorage wraps every failure to write a message durably (disk full,
// I/O error, failed fsync). A session that sees it must answer 452 4.3.1,
// never 250.
var ErrStorage = errors.New("queue: storage failure")
