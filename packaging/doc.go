// Package packaging holds what installs icptrack as a system service: the
// systemd unit (icptrack.service) and its default configuration
// (config.yaml). Its tests run the unit's command as systemd would, with
// exactly the capabilities the unit grants, and check that each of them
// is needed.
package packaging
