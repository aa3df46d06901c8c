package queue

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"testing"
)

// chunkFS serves one file's content from memory, whatever the name, in
// reads of at most chunk bytes; with eofWithData the last read returns its
// bytes together with io.EOF, as io.Reader allows.
type chunkFS struct {
	osFS
	content     []byte
	chunk       int
	eofWithData bool
}

func (c *chunkFS) OpenFile(string, int, fs.FileMode) (File, error) {
	return &chunkFile{fs: c, rest: c.content}, nil
}

type chunkFile struct {
	File // nil: only Read and Close are used
	fs   *chunkFS
	rest []byte
}

func (f *chunkFile) Read(p []byte) (int, error) {
	if len(f.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), f.fs.chunk)], f.rest)
	f.rest = f.rest[n:]
	if len(f.rest) == 0 && f.fs.eofWithData {
		return n, io.EOF
	}
	return n, nil
}

func (f *chunkFile) Close() error { return nil }

func TestReadFileInto(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, 7, 8, 9, 16, 100, 8 << 10, 8<<10 + 1, 100 << 10} {
		content := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		for _, fsys := range []*chunkFS{
			{content: content, chunk: 1 << 20},
			{content: content, chunk: 3},
			{content: content, chunk: 5, eofWithData: true},
			{content: content, chunk: 1 << 20, eofWithData: true},
		} {
			for _, capacity := range []int{0, 1, 8, 8 << 10} {
				buf := append(make([]byte, 0, capacity), "stale"[:min(capacity, 5)]...)
				got, err := readFileInto(fsys, "f", buf)
				if err != nil || !bytes.Equal(got, content) {
					t.Errorf("%d bytes in chunks of %d (EOF with data %v) into cap %d: got %d bytes, %v; want the file's %d",
						size, fsys.chunk, fsys.eofWithData, capacity, len(got), err, size)
					continue
				}
				if size > 0 && size < capacity && &got[0] != &buf[:1][0] {
					t.Errorf("%d bytes into cap %d: a new buffer, want buf's storage reused", size, capacity)
				}
			}
		}
	}
	if _, err := readFileInto(osFS{}, t.TempDir()+"/missing", nil); !os.IsNotExist(err) {
		t.Errorf("readFileInto(missing) = %v, want not exist", err)
	}
}
