package layers

import (
	"context"
	"io"
)

// ContextWriter returns a writer that fails with the context's cause once
// ctx is done, so a long stream (a layer, a copy, a layout blob) stops
// within one chunk of an interrupt.
func ContextWriter(ctx context.Context, w io.Writer) io.Writer {
	if ctx.Done() == nil {
		return w
	}
	return &ctxWriter{ctx: ctx, w: w}
}

type ctxWriter struct {
	ctx context.Context // the stream's own, for its duration only
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.w.Write(p)
}

// ContextReader returns a reader that fails with the context's cause once
// ctx is done.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	if ctx.Done() == nil {
		return r
	}
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context // the stream's own, for its duration only
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}
