package testredis

import (
	"os"
	"strconv"
	"strings"
)

// procStat is what the helpers need from /proc/<pid>/stat.
type procStat struct {
	pid, ppid, pgrp int
	state           byte
}

// parseProcStat parses the content of /proc/<pid>/stat. The command name is in
// parentheses and may itself contain spaces and parentheses, so fields are counted from
// the last ')'.
func parseProcStat(pid int, s string) (procStat, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{pid: pid, ppid: ppid, pgrp: pgrp, state: f[0][0]}, true
}

// liveProcesses lists all processes that are not zombies. Processes that vanish while
// /proc is read are left out.
func liveProcesses() []procStat {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var ps []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if st, ok := parseProcStat(pid, string(b)); ok && st.state != 'Z' && st.state != 'X' {
			ps = append(ps, st)
		}
	}
	return ps
}

// childrenOf returns the live children of ppid.
func childrenOf(ppid int) []int {
	var pids []int
	for _, p := range liveProcesses() {
		if p.ppid == ppid {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// groupMembers returns the live members of process group pgrp.
func groupMembers(pgrp int) []int {
	var pids []int
	for _, p := range liveProcesses() {
		if p.pgrp == pgrp {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// alive reports whether pid is a live (non-zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	st, ok := parseProcStat(pid, string(b))
	return ok && st.state != 'Z' && st.state != 'X'
}
