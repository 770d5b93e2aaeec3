package policy

import (
	"errors"
	"fmt"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// logFile reports a Redis log path that names a FIFO, a device, a socket or a
// directory. The guardian does not read it (a read could block the tick and its
// shutdown), so the instance is watched by polling alone, without the causes the
// log names; the operator should know, and which path it was.
func (d *diag) logFile() {
	var nr *monitor.NotRegularError
	if d.s.Log.Source != monitor.LogFile || !errors.As(d.s.Log.Err, &nr) {
		return
	}
	d.add(IDLogFileNotRegular, Warning,
		fmt.Sprintf("the Redis log %s is a %s, not a regular file: it is not read, so failures are seen by polling, without their cause", nr.Path, nr.Type),
		d.s.Log.Err.Error(),
		"point log_file (or Redis's logfile) at a regular file, or a symlink to one; a FIFO, device, socket or directory is never read")
}
