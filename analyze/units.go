package analyze

import (
	"bytes"
	"io"
	"strconv"

	"github.com/icptrack/icptrack/internal/human"
)

// Human units for the text report: three significant digits at most.

// count shows a number of operations: 38, 1.2k, 3.4M.
func count(n int64) string {
	return scaled(float64(n), 1000, []string{"", "k", "M", "G", "T"}, "")
}

// bytesOf shows a number of bytes: 171 B, 1.2 KiB, 38 KiB.
func bytesOf(n int64) string {
	return scaled(float64(n), 1024, []string{"B", "KiB", "MiB", "GiB", "TiB"}, " ")
}

// perSecond shows a rate: 12/s, 1.2k/s.
func perSecond(v float64) string {
	return scaled(v, 1000, []string{"", "k", "M", "G", "T"}, "") + "/s"
}

// bytesPerSecond shows a byte rate: 38 KiB/s.
func bytesPerSecond(v float64) string {
	return scaled(v, 1024, []string{"B", "KiB", "MiB", "GiB", "TiB"}, " ") + "/s"
}

func scaled(v, unit float64, suffixes []string, sep string) string {
	i := 0
	for v >= unit && i < len(suffixes)-1 {
		v /= unit
		i++
	}
	if i == 0 && v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10) + sep + suffixes[0]
	}
	return human.Float(v) + sep + suffixes[i]
}

// trimmed drops the spaces tabwriter pads a line's empty last cells with,
// so that no line of a report ends in blanks.
type trimmed struct {
	w    io.Writer
	line []byte
}

func (t *trimmed) Write(b []byte) (int, error) {
	for _, c := range b {
		t.line = append(t.line, c)
		if c != '\n' {
			continue
		}
		body := bytes.TrimRight(t.line[:len(t.line)-1], " ")
		if _, err := t.w.Write(append(body, '\n')); err != nil {
			return 0, err
		}
		t.line = t.line[:0]
	}
	return len(b), nil
}
