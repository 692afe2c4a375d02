package store

import "github.com/icptrack/icptrack/flow"

// Records is a run of operations encoded as the store encodes a data
// block's body: about a quarter of a flow.Operation's size, and no
// pointers, so that a process that keeps many (the API's in-memory
// window) costs its garbage collector nothing to scan. Each run decodes
// on its own.
type Records struct {
	enc  encoder
	body []byte
	n    int
}

// Append encodes op after the others.
func (r *Records) Append(op *flow.Operation) {
	r.body = r.enc.appendOp(r.body, op)
	r.n++
}

// Len is how many operations were appended.
func (r *Records) Len() int { return r.n }

// Bytes is the encoded run. It stays good until the next Append or
// Reset, which write into the same buffer: hand Bytes to Decode, or keep
// a copy.
func (r *Records) Bytes() []byte { return r.body }

// Reset starts a new run in the same buffer.
func (r *Records) Reset() {
	r.enc.reset()
	r.body, r.n = r.body[:0], 0
}

// RecordDecoder reads runs that Records wrote.
type RecordDecoder struct {
	dec decoder
	op  flow.Operation
}

// Decode calls fn with each operation of body in turn until fn returns
// false. The operation is the decoder's, good until fn returns: who keeps
// it keeps its Clone.
func (d *RecordDecoder) Decode(body []byte, fn func(i int, op *flow.Operation) bool) error {
	d.dec.reset(body)
	for i := 0; ; i++ {
		typ, rec, ok := d.dec.next()
		if !ok {
			break
		}
		if typ != recOperation {
			continue
		}
		if err := d.dec.operation(rec, &d.op); err != nil {
			return err
		}
		if !fn(i, &d.op) {
			return nil
		}
	}
	return d.dec.err
}
