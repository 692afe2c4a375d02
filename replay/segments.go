package replay

import (
	"os"
	"strconv"
	"strings"

	"github.com/icptrack/icptrack/flow"
)

// segment plans a shared-memory segment (SysV, POSIX or memfd): its
// lifecycle, and the futex waits and wakes on words inside it, the only
// trace its traffic leaves (loads and stores are not traced, so they are
// not re-enacted). A wait is released by the wake the capture linked it
// to: the wakes of a word are numbered in time order.
func (pl *planner) segment(c *channelOps) {
	seq := map[flow.OpID]int64{}
	wakes := map[int64]int64{}
	for _, op := range c.ops {
		if op.Op == flow.Wake && op.Error == "" {
			off := futexOffset(op.Endpoint)
			wakes[off]++
			seq[op.ID] = wakes[off]
		}
	}
	created := false
	var size, top int64
	first := len(pl.steps)
	for _, op := range c.ops {
		act := Action(0)
		switch op.Op {
		case flow.Create:
			act = Create
		case flow.Open:
			act = Open
		case flow.Attach:
			act = Attach
		case flow.Detach:
			act = Detach
		case flow.Unlink:
			act = Unlink
		case flow.Wake:
			act = Wake
		case flow.Wait:
			act = Wait
		}
		var n int64
		for _, id := range op.Links {
			n = max(n, seq[id])
		}
		switch {
		case op.Error != "":
			pl.skip(op, Failed, op.Error)
		case act == 0 || (act == Unlink && c.ch.Mech == flow.Memfd):
			pl.skip(op, Unsupported, op.Op.String()+" "+op.Syscall)
		case act == Wait && n == 0:
			pl.skip(op, UnknownSender, "no traced wake released it")
		default:
			if act == Create {
				created = true
			}
			off := int64(0)
			if act == Wake || act == Wait {
				off = futexOffset(op.Endpoint)
				top = max(top, off+4)
				if act == Wake {
					n = seq[op.ID]
				}
			} else {
				size = max(size, op.Bytes)
			}
			pl.steps = append(pl.steps, planned{op: op, act: act, ch: c, role: Segment, offset: off, seq: n})
			c.planned++
		}
	}
	// A wake that released a planned wait waits for its waiter.
	type word struct{ off, seq int64 }
	awaited := map[word]bool{}
	for _, st := range pl.steps[first:] {
		if st.act == Wait {
			awaited[word{st.offset, st.seq}] = true
		}
	}
	for i := range pl.steps[first:] {
		st := &pl.steps[first+i]
		st.awaited = st.act == Wake && awaited[word{st.offset, st.seq}]
	}
	if size < top {
		// Only its futexes were seen: big enough for them, in pages.
		page := int64(os.Getpagesize())
		size = (top + page - 1) / page * page
	}
	c.ch.Existed, c.ch.MaxMessage = !created, size
}

// futexOffset is where in its segment a futex word is: the endpoint of a
// wait or wake ends in +0x and the offset.
func futexOffset(endpoint string) int64 {
	i := strings.LastIndex(endpoint, "+0x")
	if i < 0 {
		return 0
	}
	off, err := strconv.ParseInt(endpoint[i+3:], 16, 64)
	if err != nil {
		return 0
	}
	return off
}
