package monitor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bulk frames s as a RESP bulk string.
func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

type replyCase struct {
	name   string
	stream string
	// bad is the offending line's start, "" for a valid stream. Its LF (or the
	// byte the rule breaks on) must never be accepted.
	bad string
	// reason is part of the error's reason.
	reason string
	// wholeOnly skips the splits of a long stream that is slow to check.
	wholeOnly bool
}

func replyCases(t *testing.T) []replyCase {
	t.Helper()
	info, err := os.ReadFile(filepath.Join("testdata", "info-redis-8.0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("*1\r\n", MaxReplyDepth) + ":1\r\n"
	tooDeep := strings.Repeat("*1\r\n", MaxReplyDepth+1)
	return []replyCase{
		// RESP2.
		{name: "status", stream: "+OK\r\n"},
		{name: "empty status", stream: "+\r\n"},
		{name: "error", stream: "-ERR unknown command 'FOO'\r\n"},
		{name: "integer", stream: ":-42\r\n"},
		{name: "bulk", stream: bulk("hello")},
		{name: "empty bulk", stream: "$0\r\n\r\n"},
		{name: "bulk with CRLF inside", stream: bulk("a\r\nb\r\n")},
		{name: "null bulk", stream: "$-1\r\n"},
		{name: "null array", stream: "*-1\r\n"},
		{name: "empty array", stream: "*0\r\n"},
		{name: "INFO", stream: bulk(string(info))},
		{name: "INFO of 1 MiB", stream: bulk(strings.Repeat(string(info), 1<<20/len(info)))},
		{name: "CONFIG GET", stream: "*4\r\n" + bulk("dir") + bulk("/var/lib/redis") + bulk("save") + bulk("3600 1 300 100")},
		{name: "nested", stream: "*2\r\n*3\r\n:1\r\n$-1\r\n*0\r\n*1\r\n" + bulk("x")},
		{name: "pipelined", stream: "+OK\r\n" + bulk("v") + "*2\r\n:1\r\n:2\r\n-ERR no\r\n"},
		{name: "nested to the depth limit", stream: deep},
		// RESP3.
		{name: "null", stream: "_\r\n"},
		{name: "double", stream: ",3.14\r\n,inf\r\n"},
		{name: "boolean", stream: "#t\r\n"},
		{name: "big number", stream: "(3492890328409238509324850943850943825024385\r\n"},
		{name: "verbatim", stream: "=15\r\ntxt:Some string\r\n"},
		{name: "blob error", stream: "!21\r\nSYNTAX invalid syntax\r\n"},
		{name: "map", stream: "%2\r\n+first\r\n:1\r\n+second\r\n*2\r\n:2\r\n:3\r\n"},
		{name: "set", stream: "~2\r\n+a\r\n+b\r\n"},
		{name: "push", stream: ">3\r\n+message\r\n+ch\r\n" + bulk("hi")},
		{name: "attribute before a reply", stream: "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2\r\n:3\r\n"},
		{name: "attribute inside an array", stream: "*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n"},
		{name: "empty map", stream: "%0\r\n"},
		{name: "a reply at each bound", stream: "*" + fmt.Sprint(MaxAggregateLen) + "\r\n" + strings.Repeat(":1\r\n", MaxAggregateLen) + "%0\r\n", wholeOnly: true},

		// What the review's hostile peer sent.
		{name: "bulk of 2 GiB", stream: "$2147483647\r\n", bad: "$2147483647", reason: "bulk length over"},
		{name: "bulk of MaxInt64", stream: "$9223372036854775807\r\n", bad: "$9223372036854775807", reason: "bulk length over"},
		{name: "array of 2^31", stream: "*2147483647\r\n", bad: "*2147483647", reason: "aggregate length over"},
		{name: "error line of 1 MiB", stream: "-ERR " + strings.Repeat("x", 1<<20) + "\r\n", bad: "-ERR xxx", reason: "line longer than"},
		// Other bounds.
		{name: "bulk just over", stream: fmt.Sprintf("$%d\r\n", MaxBulkLen+1), bad: "$67108865", reason: "bulk length over"},
		{name: "verbatim over", stream: "=99999999999\r\n", bad: "=99999999999", reason: "bulk length over"},
		{name: "blob error over", stream: "!99999999999\r\n", bad: "!99999999999", reason: "bulk length over"},
		{name: "map over", stream: fmt.Sprintf("%%%d\r\n", MaxAggregateLen/2+1), bad: "%524289", reason: "announce over"},
		{name: "set over", stream: "~9999999\r\n", bad: "~9999999", reason: "aggregate length over"},
		{name: "push over", stream: ">9999999\r\n", bad: ">9999999", reason: "aggregate length over"},
		{name: "attribute over", stream: "|9999999\r\n", bad: "|9999999", reason: "aggregate length over"},
		{name: "aggregates over together", stream: fmt.Sprintf("*2\r\n*%d\r\n*%d\r\n", MaxAggregateLen/2, MaxAggregateLen/2), bad: "*524288", reason: "announce over"},
		{name: "too deep", stream: tooDeep, bad: "*1", reason: "nested deeper"},
		{name: "bulks over the reply bound", stream: fmt.Sprintf("*3\r\n$%d\r\n%s\r\n$%d\r\n", MaxBulkLen, strings.Repeat("x", MaxBulkLen), MaxBulkLen),
			bad: "$67108864", reason: "reply over"},
		// Framing.
		{name: "negative length", stream: "$-2\r\n", bad: "$-2", reason: "other than -1"},
		{name: "negative zero", stream: "*-0\r\n", bad: "*-0", reason: "other than -1"},
		{name: "non-digit length", stream: "$12a\r\n", bad: "$12a", reason: "non-digit"},
		{name: "no length", stream: "$\r\n", bad: "$", reason: "without a number"},
		{name: "CR inside a length", stream: "*1\r2\r\n", bad: "*1", reason: "CR inside"},
		{name: "unknown type", stream: "?1\r\n", bad: "?", reason: "unknown reply type"},
		{name: "LF without CR", stream: "+OK\n", bad: "+OK", reason: "without CR"},
		{name: "payload without CRLF", stream: "$2\r\nabc\r\n", bad: "$2", reason: "not followed by CRLF"},
		{name: "empty integer", stream: ":\r\n", bad: ":", reason: "empty line"},
		{name: "bad reply after good ones", stream: "+OK\r\n" + bulk("v") + "$2147483647\r\n", bad: "$2147483647", reason: "bulk length over"},
	}
}

// badEnd is the index of the byte that must never be accepted: the LF of the
// offending line, or the byte after the payload where CRLF was due, or the
// first byte of an unknown type.
func badEnd(c replyCase) int {
	start := strings.LastIndex(c.stream, c.bad)
	switch c.reason {
	case "unknown reply type":
		return start
	case "not followed by CRLF":
		return start + len("$2\r\nab")
	}
	if lf := strings.IndexByte(c.stream[start:], '\n'); lf >= 0 {
		return start + lf
	}
	return len(c.stream)
}

// feed feeds stream in the given chunks and returns the bytes accepted and the
// error, if any.
func feed(chunks ...[]byte) (accepted int, err error) {
	var v replyValidator
	for _, c := range chunks {
		if err := v.Feed(c); err != nil {
			return accepted, err
		}
		accepted += len(c)
	}
	return accepted, nil
}

// checkResult checks one feeding of c.
func checkResult(t *testing.T, c replyCase, how string, accepted int, err error) {
	t.Helper()
	if c.bad == "" {
		if err != nil {
			t.Fatalf("%s: valid stream refused: %v", how, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("%s: accepted, want an error naming %q", how, c.bad)
	}
	var re *ReplyError
	if !errors.As(err, &re) || !errors.Is(err, ErrInvalidReply) {
		t.Fatalf("%s: error %v (%T) is no *ReplyError matching ErrInvalidReply", how, err, err)
	}
	head := strings.TrimSuffix(re.Header, "...")
	if !strings.HasPrefix(head, c.bad) && !strings.HasPrefix(c.bad, head) || !strings.Contains(re.Reason, c.reason) {
		t.Fatalf("%s: error %v, want header %q and a reason with %q", how, err, c.bad, c.reason)
	}
	if end := badEnd(c); accepted > end {
		t.Fatalf("%s: %d bytes accepted, past byte %d where the offending line ends: a parser saw it", how, accepted, end)
	}
	if len(err.Error()) > 200 {
		t.Fatalf("%s: error text of %d bytes: %.300s", how, len(err.Error()), err)
	}
}

func TestReplyValidator(t *testing.T) {
	t.Parallel()
	for _, c := range replyCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := []byte(c.stream)
			acc, err := feed(b)
			checkResult(t, c, "whole", acc, err)
			// Split at every byte boundary: a short stream everywhere, a long
			// one near its start, its end and the offending line's end.
			end := -1 << 30
			if c.bad != "" {
				end = badEnd(c)
			}
			for i := 0; i <= len(b); i++ {
				if len(b) > 4096 && (c.wholeOnly || i > 64 && i < len(b)-64 && abs(i-end) > 64) {
					continue
				}
				acc, err := feed(b[:i], b[i:])
				checkResult(t, c, fmt.Sprintf("split at %d", i), acc, err)
			}
			if len(b) <= 4096 {
				chunks := make([][]byte, len(b))
				for i := range b {
					chunks[i] = b[i : i+1]
				}
				acc, err := feed(chunks...)
				checkResult(t, c, "byte by byte", acc, err)
			}
		})
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestReplyValidatorBoundsPerReply: the bounds of a reply start over at the next
// reply, so a long-lived connection never accumulates toward them.
func TestReplyValidatorBoundsPerReply(t *testing.T) {
	t.Parallel()
	var v replyValidator
	reply := []byte(fmt.Sprintf("*%d\r\n", MaxAggregateLen/2) + strings.Repeat(":1\r\n", MaxAggregateLen/2))
	payload := make([]byte, MaxBulkLen)
	for i := range 3 {
		if err := v.Feed(reply); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if err := v.Feed([]byte(fmt.Sprintf("$%d\r\n", MaxBulkLen))); err != nil {
			t.Fatalf("bulk %d: %v", i, err)
		}
		if err := v.Feed(payload); err != nil {
			t.Fatalf("bulk payload %d: %v", i, err)
		}
		if err := v.Feed([]byte("\r\n")); err != nil {
			t.Fatalf("bulk end %d: %v", i, err)
		}
	}
	// After an error, the validator keeps refusing.
	if err := v.Feed([]byte("$-5\r\n")); err == nil {
		t.Fatal("$-5 accepted")
	}
	if err := v.Feed([]byte("+OK\r\n")); !errors.Is(err, ErrInvalidReply) {
		t.Fatalf("after an error: %v, want the error again", err)
	}
}

// FuzzReplyValidator: no input panics it, and where the stream is split never
// changes where it fails.
func FuzzReplyValidator(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nfoo\r\n:1\r\n"), uint16(3))
	f.Add([]byte("$2147483647\r\n"), uint16(1))
	f.Add([]byte("|1\r\n+a\r\n:1\r\n%1\r\n+k\r\n~1\r\n_\r\n"), uint16(7))
	f.Add([]byte(strings.Repeat("*1\r\n", 70)), uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, step uint16) {
		// Where byte-by-byte feeding fails is the reference.
		var ref replyValidator
		failAt := -1
		for i := range data {
			if ref.Feed(data[i:i+1]) != nil {
				failAt = i
				break
			}
		}
		n := int(step%64) + 1
		var v replyValidator
		for off := 0; off < len(data); off += n {
			end := min(off+n, len(data))
			err := v.Feed(data[off:end])
			switch {
			case err == nil && failAt >= off && failAt < end:
				t.Fatalf("chunk [%d,%d) accepted, but byte %d fails byte by byte", off, end, failAt)
			case err != nil && (failAt < off || failAt >= end):
				t.Fatalf("chunk [%d,%d) failed (%v), but byte by byte fails at %d", off, end, err, failAt)
			case err != nil:
				if !errors.Is(err, ErrInvalidReply) || len(err.Error()) > 200 {
					t.Fatalf("error %v", err)
				}
				return
			}
		}
	})
}
