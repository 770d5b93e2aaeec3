package monitor

import (
	"errors"
	"fmt"
	"strconv"
)

// The bounds of one reply from Redis. go-redis allocates what a reply's header
// announces before it reads the payload (a bulk string's length, an array's
// element count), so a peer that is not a sane Redis (something squatting the
// port during a restart, a man in the middle without TLS) could make it allocate
// gigabytes, or panic, with one short line. Every reply the guardian reads is far
// below these: INFO is tens of KiB, CONFIG GET a few hundred bytes.
const (
	// MaxBulkLen bounds one bulk string, verbatim string or blob error.
	MaxBulkLen = 64 << 20
	// MaxAggregateLen bounds the elements the aggregates of one reply announce
	// together (a map or attribute of n pairs announces 2n).
	MaxAggregateLen = 1 << 20
	// MaxReplyBytes bounds one whole reply, headers and payloads together.
	MaxReplyBytes = 2 * MaxBulkLen
	// MaxLineLen bounds a header or simple line (status, error, number), CRLF
	// included. go-redis buffers a line until its LF, without a limit.
	MaxLineLen = 64 << 10
	// MaxReplyDepth bounds the nesting of aggregates: go-redis reads them
	// recursively, so a deep reply would grow its stack without a bound.
	MaxReplyDepth = 64
)

// ErrInvalidReply is what every reply rejected by the bounds matches with
// errors.Is; ClassifyError makes it ErrReplyInvalid.
var ErrInvalidReply = errors.New("invalid reply from redis")

// ReplyError says which reply was rejected and why. It is returned by the
// connection's Read before go-redis sees the offending header, so go-redis
// fails the command and drops the connection instead of allocating.
type ReplyError struct {
	// Header is the start of the offending line, e.g. "$2147483647".
	Header string
	// Reason says which bound or rule the line broke.
	Reason string
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("%s: %q: %s", ErrInvalidReply, e.Header, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidReply) hold. It is not Unwrap: go-redis
// unwraps an error of the connection's handshake once, which would leave the
// sentinel without the header and the reason.
func (e *ReplyError) Is(target error) bool { return target == ErrInvalidReply }

// headKeep is how much of a line a ReplyError quotes.
const headKeep = 40

// States of replyValidator.
const (
	stType      = iota // expecting the type byte of the next item
	stLine             // inside a header or simple line
	stPayload          // skipping the bytes of a bulk payload
	stPayloadCR        // expecting the CR after a payload
	stPayloadLF        // expecting the LF after a payload
)

// replyFrame is one open aggregate: how many elements it still expects, and
// whether it is an attribute (which is no element of its parent: the value it
// annotates follows it).
type replyFrame struct {
	remain int64
	attr   bool
}

// replyValidator checks the framing of a RESP2/RESP3 byte stream against the
// bounds above, one chunk at a time, as the bytes arrive. It keeps no bytes but
// the start of the current line, so it costs the same for any reply. The zero
// value is ready. After an error it keeps returning that error.
type replyValidator struct {
	state int
	typ   byte
	// The current line: its length so far, its start, whether its last byte was
	// CR, and for a header its number.
	lineLen int
	head    [headKeep]byte
	headN   int
	more    bool // the line goes on past head
	prevCR  bool
	num     int64
	digits  int
	neg     bool
	// remain is what is left of a payload.
	remain int64
	// The current top-level reply: its bytes and the elements its aggregates
	// announced.
	replyBytes int64
	replyElems int64
	stack      [MaxReplyDepth]replyFrame
	depth      int
	err        error
}

// Feed checks the next bytes of the stream. It returns an error (a *ReplyError)
// as soon as they break the framing or a bound: at the latest when the
// offending header's line is complete, before a parser could act on it.
func (v *replyValidator) Feed(p []byte) error {
	if v.err != nil {
		return v.err
	}
	for i := 0; i < len(p); {
		b := p[i]
		switch v.state {
		case stType:
			if !isReplyType(b) {
				v.headN = 0
				v.keep(b)
				return v.fail(fmt.Sprintf("unknown reply type byte %q", b))
			}
			v.typ, v.state = b, stLine
			v.lineLen, v.headN, v.prevCR, v.more = 1, 0, false, false
			v.num, v.digits, v.neg = 0, 0, false
			v.keep(b)
			v.replyBytes++
			i++
		case stLine:
			v.lineLen++
			v.replyBytes++
			v.keep(b)
			i++
			if v.lineLen > MaxLineLen {
				return v.fail(fmt.Sprintf("line longer than %d bytes", MaxLineLen))
			}
			if v.replyBytes > MaxReplyBytes {
				return v.fail(fmt.Sprintf("reply over the limit of %d bytes", MaxReplyBytes))
			}
			if b == '\n' {
				if !v.prevCR {
					return v.fail("line ends in LF without CR")
				}
				if err := v.lineDone(); err != nil {
					return err
				}
				continue
			}
			if isLengthType(v.typ) {
				if reason := v.headerByte(b); reason != "" {
					// Name the whole number, not the digits that broke the bound.
					j := i
					for ; j < len(p) && p[j] >= '0' && p[j] <= '9'; j++ {
						v.keep(p[j])
					}
					v.more = j == len(p) // more digits may follow
					return v.fail(reason)
				}
			}
			v.prevCR = b == '\r'
		case stPayload:
			n := min(int64(len(p)-i), v.remain)
			v.remain -= n
			i += int(n)
			if v.remain == 0 {
				v.state = stPayloadCR
			}
		case stPayloadCR, stPayloadLF:
			want := byte('\r')
			if v.state == stPayloadLF {
				want = '\n'
			}
			if b != want {
				return v.fail(fmt.Sprintf("payload not followed by CRLF (byte %q)", b))
			}
			i++
			if v.state == stPayloadCR {
				v.state = stPayloadLF
				continue
			}
			v.state = stType
			v.itemDone()
		}
	}
	return nil
}

// headerByte takes one byte of a length header (before its CRLF) and says
// what is wrong with it, if anything.
func (v *replyValidator) headerByte(b byte) string {
	switch {
	case v.prevCR:
		return "CR inside a length header"
	case b == '\r':
		return ""
	case b == '-' && v.lineLen == 2:
		v.neg = true
		return ""
	case b < '0' || b > '9':
		return fmt.Sprintf("length header has a non-digit byte %q", b)
	}
	v.digits++
	v.num = v.num*10 + int64(b-'0')
	// Checked at every digit: a length over its bound is refused before its
	// line is complete, and num never overflows.
	switch {
	case v.neg && v.num > 1:
		return "negative length other than -1"
	case v.neg:
	case isBulkType(v.typ) && v.num > MaxBulkLen:
		return fmt.Sprintf("bulk length over the limit of %d bytes", MaxBulkLen)
	case !isBulkType(v.typ) && v.num > MaxAggregateLen:
		return fmt.Sprintf("aggregate length over the limit of %d elements", MaxAggregateLen)
	}
	return ""
}

// lineDone acts on a complete line (its CRLF consumed).
func (v *replyValidator) lineDone() error {
	v.state = stType
	if !isLengthType(v.typ) {
		if v.typ != '+' && v.typ != '-' && v.lineLen == 3 {
			// ":" "_" "," "#" "(" with nothing before CRLF: only "_" is one.
			if v.typ != '_' {
				return v.fail("empty line")
			}
		}
		v.itemDone()
		return nil
	}
	if v.digits == 0 {
		return v.fail("length header without a number")
	}
	if v.neg {
		if v.num != 1 {
			return v.fail("negative length other than -1")
		}
		v.itemDone() // -1: a null
		return nil
	}
	if isBulkType(v.typ) {
		if v.replyBytes+v.num+2 > MaxReplyBytes {
			return v.fail(fmt.Sprintf("reply over the limit of %d bytes", MaxReplyBytes))
		}
		v.replyBytes += v.num + 2
		v.remain = v.num
		v.state = stPayload
		if v.num == 0 {
			v.state = stPayloadCR
		}
		return nil
	}
	elems := v.num
	if v.typ == '%' || v.typ == '|' {
		elems *= 2
	}
	if v.replyElems+elems > MaxAggregateLen {
		return v.fail(fmt.Sprintf("the aggregates of one reply announce over %d elements", MaxAggregateLen))
	}
	v.replyElems += elems
	if elems == 0 {
		if v.typ != '|' { // an empty attribute annotates the next item
			v.itemDone()
		}
		return nil
	}
	if v.depth == MaxReplyDepth {
		return v.fail(fmt.Sprintf("aggregates nested deeper than %d", MaxReplyDepth))
	}
	v.stack[v.depth] = replyFrame{remain: elems, attr: v.typ == '|'}
	v.depth++
	return nil
}

// itemDone counts a complete item against the aggregates it completes; a
// complete top-level item ends the reply.
func (v *replyValidator) itemDone() {
	for v.depth > 0 {
		top := &v.stack[v.depth-1]
		top.remain--
		if top.remain > 0 {
			return
		}
		v.depth--
		if top.attr {
			return // the annotated item follows
		}
	}
	v.replyBytes, v.replyElems = 0, 0
}

// keep records a byte of the current line for the error message.
func (v *replyValidator) keep(b byte) {
	if v.headN < len(v.head) && b != '\r' && b != '\n' {
		v.head[v.headN] = b
		v.headN++
	}
}

// maxQuotedHead bounds a ReplyError's header as quoted in its message: a byte
// that is not printable is quoted as four (\xfd), so 40 of them made a
// 160-byte header and a 230-byte error (FuzzReplyValidator).
const maxQuotedHead = 48

func (v *replyValidator) fail(reason string) error {
	head, cut := v.head[:v.headN], v.more || v.headN == len(v.head)
	for len(strconv.Quote(string(head))) > maxQuotedHead {
		head, cut = head[:len(head)-1], true
	}
	h := string(head)
	if cut {
		h += "..."
	}
	v.err = &ReplyError{Header: h, Reason: reason}
	return v.err
}

// isReplyType reports whether b starts a RESP2 or RESP3 item that go-redis reads.
func isReplyType(b byte) bool {
	switch b {
	case '+', '-', ':', '_', ',', '#', '(', '$', '=', '!', '*', '%', '~', '>', '|':
		return true
	}
	return false
}

// isLengthType reports whether a line of type t is a length header.
func isLengthType(t byte) bool {
	return isBulkType(t) || t == '*' || t == '%' || t == '~' || t == '>' || t == '|'
}

// isBulkType reports whether a header of type t is followed by a payload.
func isBulkType(t byte) bool { return t == '$' || t == '=' || t == '!' }
