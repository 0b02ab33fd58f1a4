package layers

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestPipelineCopiesInOrder(t *testing.T) {
	var want bytes.Buffer
	for i := 0; i < 50000; i++ {
		want.WriteString("line ")
		want.WriteByte(byte('a' + i%26))
	}
	var got bytes.Buffer
	err := pipeline(&got, func(w io.Writer) error {
		// Mixed write sizes: small (tar headers) and large (file bodies).
		b := want.Bytes()
		for len(b) > 0 {
			n := 7
			if len(b) > 300000 {
				n = 300000
			}
			if n > len(b) {
				n = len(b)
			}
			if _, err := w.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	})
	if err != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("pipeline() = %v, %d bytes, want %d", err, got.Len(), want.Len())
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestPipelineErrors(t *testing.T) {
	boom := errors.New("boom")
	if err := pipeline(io.Discard, func(w io.Writer) error { w.Write([]byte("x")); return boom }); err != boom {
		t.Errorf("producer error: pipeline() = %v", err)
	}
	err := pipeline(&failWriter{after: 1}, func(w io.Writer) error {
		big := make([]byte, chunkSize)
		for i := 0; i < 100; i++ {
			if _, err := w.Write(big); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || err.Error() != "disk full" {
		t.Errorf("consumer error: pipeline() = %v", err)
	}
}
