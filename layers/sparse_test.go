package layers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// TestSparseFiles: a sparse file's holes are neither read nor written:
// the staging copy keeps them as holes, the tar holds the same bytes as
// for the file written densely (the digest depends on content only), and
// the input hash does not read gigabytes of zeros.
func TestSparseFiles(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 20
	sparse := filepath.Join(dir, "sparse.img")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("hello"), 3<<20)
	f.WriteAt([]byte("bye"), size-3)
	f.Close()
	if blocks(t, sparse)*512 >= size/2 {
		t.Skip("SKIP: this file system does not keep holes")
	}
	want := make([]byte, size)
	copy(want[3<<20:], "hello")
	copy(want[size-3:], "bye")
	dense := filepath.Join(dir, "dense.img")
	if err := os.WriteFile(dense, want, 0o644); err != nil {
		t.Fatal(err)
	}

	r, _ := os.Open(sparse)
	regions, isSparse := dataRegions(r, size)
	var first [1]byte
	if _, err := r.Read(first[:]); err != nil {
		t.Errorf("read after dataRegions: %v (the offset was left at the end)", err)
	}
	r.Close()
	if !isSparse || len(regions) != 2 {
		t.Fatalf("dataRegions = %v, %v; want two data regions", regions, isSparse)
	}
	if _, isSparse := dataRegions(mustOpen(t, dense), size); isSparse {
		t.Errorf("the dense file is taken for a sparse one")
	}

	fileOf := func(p string) File {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return File{Rel: "disk.img", Abs: p, Mode: info.Mode(), Size: info.Size()}
	}
	var got bytes.Buffer
	if err := copyFile(&got, fileOf(sparse), make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("copyFile of the sparse file differs from its content")
	}

	tarOf := func(p string) []byte {
		var b bytes.Buffer
		if err := WriteTar(&b, []File{fileOf(p)}, Spec{Dest: "/app"}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	if !bytes.Equal(tarOf(sparse), tarOf(dense)) {
		t.Errorf("the sparse and the dense file give different tars")
	}

	stage := t.TempDir()
	if err := CopyFiles(context.Background(), stage, []File{fileOf(sparse)}); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(stage, "disk.img")
	if b, _ := os.ReadFile(copied); !bytes.Equal(b, want) {
		t.Errorf("the staging copy differs from the file")
	}
	if got := blocks(t, copied) * 512; got >= size/2 {
		t.Errorf("the staging copy takes %d bytes of disk for %d of data: its holes were written", got, 8)
	}

	h1, err := HashFiles(context.Background(), []File{fileOf(sparse)})
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashFiles(context.Background(), []File{fileOf(copied)})
	if h1 != h2 {
		t.Errorf("the file and its sparse copy hash differently")
	}
	f, _ = os.OpenFile(sparse, os.O_WRONLY, 0)
	f.WriteAt([]byte("HELLO"), 3<<20)
	f.Close()
	if h3, _ := HashFiles(context.Background(), []File{fileOf(sparse)}); h3 == h1 {
		t.Errorf("a change inside a data region did not change the hash")
	}
}

func blocks(t *testing.T, p string) int64 {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t).Blocks
}

func mustOpen(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestLayerDigestIndependentOfCores: the parallel compressors (pgzip,
// zstd with concurrent blocks) give the same bytes on one core and on two
// (and so the same digest on any machine), for a layer of several blocks,
// and the layer reads back as its tar.
func TestLayerDigestIndependentOfCores(t *testing.T) {
	dir := t.TempDir()
	var files []File
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		// 3 × 14 MiB: several pgzip blocks, and more than one zstd job
		// (four 8 MiB windows).
		data := make([]byte, 14<<20)
		for j := range data {
			data[j] = byte((j * (i + 7)) % 251) // compressible, not trivially
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		info, _ := os.Stat(p)
		files = append(files, File{Rel: filepath.Base(p), Abs: p, Mode: info.Mode(), Size: info.Size()})
	}
	var tarBytes bytes.Buffer
	if err := WriteTar(&tarBytes, files, Spec{Dest: "/app"}); err != nil {
		t.Fatal(err)
	}
	digest := func(compression string, procs int) string {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		s, err := NewStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		s.Compression = compression
		l, err := s.Write(context.Background(), func(w io.Writer) error { return WriteTar(w, files, Spec{Dest: "/app"}) })
		if err != nil {
			t.Fatal(err)
		}
		// It reads back as the tar it was written from.
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(back, tarBytes.Bytes()) {
			t.Errorf("%s layer does not read back as its tar (%v)", compression, err)
		}
		if mt, _ := l.MediaType(); (compression == Zstd) != (mt == "application/vnd.oci.image.layer.v1.tar+zstd") {
			t.Errorf("%s layer has media type %s", compression, mt)
		}
		return l.Desc.Digest.String()
	}
	for _, c := range []string{Gzip, Zstd} {
		if one, two := digest(c, 1), digest(c, 2); one != two {
			t.Errorf("%s: GOMAXPROCS=1 gives %s, 2 gives %s", c, one, two)
		}
	}
}
