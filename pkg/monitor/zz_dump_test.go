package monitor

import (
	"bufio"
	"fmt"
	"os"
	"testing"
	"time"
)

func TestDumpTmp(t *testing.T) {
	for _, fn := range []string{"testdata/redis-7.0-faults.log", "testdata/redis-wording-variants.log"} {
		f, _ := os.Open(fn)
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			n++
			ev, ok := ParseLogLine(sc.Text(), time.UTC)
			if ok {
				fmt.Printf("%s:%d {%q, %q, %s}\n", fn, n, ev.Kind, ev.Cause, ev.Time.Format(time.RFC3339Nano))
			}
		}
	}
}
