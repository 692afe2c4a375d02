package store

import (
	"fmt"
	"time"
)

// A reload may change a running store's segments, retention and key
// without closing it (README: "Reloading the configuration"). Closing
// and opening it again would leave a moment with no writer, or two: the
// lock lets only one hold the directory, so the new one could open only
// once the old one had closed, and what came in between would have to
// wait somewhere. The writer takes the new settings itself instead, as
// a restart would have them: it closes the segment under way (its
// closing block, seal and checkpoint), expires what the new retention no
// longer keeps, and goes on in a new segment, under the new key if the
// key file changed. Nothing is held up and the store never changes
// hands.

// tuning is what Retune changes, checked.
type tuning struct {
	segmentSize, maxSize int64
	segmentAge, maxAge   time.Duration
	keyFile              string
	keyring              *Keyring
}

// Retune checks the settings of o that a running store takes up
// (SegmentSize, SegmentAge, MaxSize, MaxAge and KeyFile; the others are
// ignored) and returns apply, which hands them to the writer's
// goroutine. A keyring that cannot be used is refused here, as Open
// refuses it (a KeyError), so that apply cannot fail on it. apply never
// blocks; the writer takes the settings up before its next operation.
func (s *Sink) Retune(o Options) (apply func(), err error) {
	t := &tuning{segmentSize: o.SegmentSize, maxSize: o.MaxSize, segmentAge: o.SegmentAge, maxAge: o.MaxAge, keyFile: o.KeyFile}
	if o.KeyFile != "" {
		if t.keyring, err = LoadKeyring(o.KeyFile); err != nil {
			return nil, &KeyError{err}
		}
		if t.keyring.current() == nil {
			return nil, &KeyError{fmt.Errorf("keyring %s has no current key: icptrack keys rotate --keyring %s makes one", o.KeyFile, o.KeyFile)}
		}
	}
	return func() {
		s.mu.Lock()
		s.tuning = t
		s.mu.Unlock()
		select {
		case s.retune <- struct{}{}:
		default: // the writer has yet to take up the one before: it takes this one
		}
	}, nil
}

// takeTuning hands the writer the settings Retune left, if any.
func (s *Sink) takeTuning() {
	s.mu.Lock()
	t := s.tuning
	s.tuning = nil
	s.mu.Unlock()
	if t != nil {
		s.fail(s.w.retune(t))
	}
}

// retune takes up t: the segment under way is closed and the next opened
// under t, as at a start.
func (w *Writer) retune(t *tuning) error {
	if w.err != nil {
		return w.err
	}
	o := w.o
	o.SegmentSize, o.MaxSize, o.KeyFile = t.segmentSize, t.maxSize, t.keyFile
	o.SegmentAge, o.MaxAge = t.segmentAge, t.maxAge
	o.defaults()
	w.o, w.keyring = o, t.keyring
	// The block being filled goes into the new segment, as when a full
	// segment rotates before it.
	return w.rotate()
}
