package certs

import (
	"crypto/tls"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"smarthost/config"
)

// files serves a certificate/key file pair and reloads it when the files
// change on disk.
type files struct {
	certFile, keyFile string
	hostname          string
	logger            *slog.Logger
	now               func() time.Time

	// current is read by every handshake without taking mu.
	current atomic.Pointer[tls.Certificate]

	mu           sync.Mutex // guards the fields below; held while checking or loading
	nextCheck    time.Time  // no stat before this
	loaded       pairStamp  // the files behind current
	failed       pairStamp  // the files that last failed to load; zero if none
	failedErr    error      // why failed did not load
	failedLogged bool       // failedErr has been logged or returned
}

// newFiles loads the pair; an unusable pair is an error.
func newFiles(opts Options) (*files, error) {
	f := &files{
		certFile: opts.TLS.CertFile,
		keyFile:  opts.TLS.KeyFile,
		hostname: opts.Hostname,
		logger:   opts.Logger,
		now:      opts.Now,
	}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *files) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.poll()
	return f.current.Load(), nil
}

func (f *files) notAfter() time.Time {
	f.poll()
	return f.current.Load().Leaf.NotAfter
}

// poll reloads the pair if it changed since the last check, at most once per
// CheckInterval. A pair that fails to load is logged only when it is still
// unchanged at the next check: certbot replaces the live/ symlinks one by
// one, and a check between the two must not raise a false alarm.
func (f *files) poll() {
	// Handshakes must not queue behind a slow stat or parse: if another
	// goroutine is checking, serve the current pair now.
	if !f.mu.TryLock() {
		return
	}
	defer f.mu.Unlock()
	now := f.now()
	if now.Before(f.nextCheck) {
		return
	}
	f.nextCheck = now.Add(CheckInterval)
	st := statPair(f.certFile, f.keyFile)
	switch {
	case st.equal(f.loaded):
		return
	case st.equal(f.failed):
		if !f.failedLogged {
			logReloadFailed(f.logger, f.certFile, f.keyFile, f.failedErr, f.current.Load().Leaf)
			f.failedLogged = true
		}
		return
	}
	cert, err := loadPair(f.certFile, f.keyFile)
	if err != nil {
		f.failed, f.failedErr, f.failedLogged = st, err, false
		return
	}
	f.install(cert, st)
}

// reload loads the pair now, whether or not it changed. On failure the
// current pair stays in service and the error is returned, not logged.
func (f *files) reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextCheck = f.now().Add(CheckInterval)
	// Stat before reading: if the files change in between, the stamp is
	// older than the contents and the next check loads them again, which
	// is harmless; the other order could miss a change.
	st := statPair(f.certFile, f.keyFile)
	cert, err := loadPair(f.certFile, f.keyFile)
	if err != nil {
		f.failed, f.failedErr, f.failedLogged = st, err, true
		return err
	}
	f.install(cert, st)
	return nil
}

// install puts cert in service. f.mu must be held.
func (f *files) install(cert *tls.Certificate, st pairStamp) {
	f.current.Store(cert)
	f.loaded = st
	f.failed, f.failedErr, f.failedLogged = pairStamp{}, nil, false
	logLoaded(f.logger, config.TLSFromFiles, f.certFile, cert.Leaf)
	for _, w := range pairWarnings(cert, f.hostname, f.now()) {
		logWarning(f.logger, f.certFile, w)
	}
}

// pairStamp identifies the contents of a certificate and key file pair
// without reading them.
type pairStamp struct{ cert, key fileStamp }

func statPair(certFile, keyFile string) pairStamp {
	return pairStamp{cert: statFile(certFile), key: statFile(keyFile)}
}

func (a pairStamp) equal(b pairStamp) bool {
	return a.cert.equal(b.cert) && a.key.equal(b.key)
}

// fileStamp is what os.Stat says about a file. os.Stat follows symlinks, so
// certbot pointing live/fullchain.pem at a new archive/ file changes the
// device/inode even when size and mtime happen to match.
type fileStamp struct {
	info os.FileInfo // nil if stat failed
	err  string      // the stat error, so a missing file is a stable state too
}

func statFile(name string) fileStamp {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{err: err.Error()}
	}
	return fileStamp{info: fi}
}

func (a fileStamp) equal(b fileStamp) bool {
	if a.info == nil || b.info == nil {
		return a.info == nil && b.info == nil && a.err == b.err
	}
	return os.SameFile(a.info, b.info) &&
		a.info.Size() == b.info.Size() &&
		a.info.ModTime().Equal(b.info.ModTime())
}
