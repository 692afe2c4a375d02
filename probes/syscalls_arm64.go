package probes

var archSyscalls []hookedSyscall
