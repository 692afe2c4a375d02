// Code generated from registry/ipc.yaml by internal/registry; DO NOT EDIT.

package semconv

// AttrIPCMechanism: The kind of IPC channel.
const AttrIPCMechanism = "ipc.mechanism"

const (
	// IPCMechanismPipe: An anonymous pipe.
	IPCMechanismPipe = "pipe"
	// IPCMechanismFifo: A named pipe (FIFO).
	IPCMechanismFifo = "fifo"
	// IPCMechanismUnixStream: A unix-domain stream socket.
	IPCMechanismUnixStream = "unix_stream"
	// IPCMechanismUnixDgram: A unix-domain datagram socket.
	IPCMechanismUnixDgram = "unix_dgram"
	// IPCMechanismUnixSeqpacket: A unix-domain sequenced-packet socket.
	IPCMechanismUnixSeqpacket = "unix_seqpacket"
	// IPCMechanismTCP: TCP over a loopback address.
	IPCMechanismTCP = "tcp"
	// IPCMechanismUDP: UDP over a loopback address.
	IPCMechanismUDP = "udp"
	// IPCMechanismPOSIXMQ: A POSIX message queue.
	IPCMechanismPOSIXMQ = "posix_mq"
	// IPCMechanismSysVMQ: A System V message queue.
	IPCMechanismSysVMQ = "sysv_mq"
	// IPCMechanismSysVShm: A System V shared-memory segment.
	IPCMechanismSysVShm = "sysv_shm"
	// IPCMechanismPOSIXShm: A POSIX shared-memory object (/dev/shm).
	IPCMechanismPOSIXShm = "posix_shm"
	// IPCMechanismMemfd: A memory file (memfd_create).
	IPCMechanismMemfd = "memfd"
	// IPCMechanismSignal: A signal.
	IPCMechanismSignal = "signal"
)

// AttrIPCOperationType: What the operation did to the channel.
const AttrIPCOperationType = "ipc.operation.type"

const (
	// IPCOperationTypeSend: Bytes or a message put into the channel.
	IPCOperationTypeSend = "send"
	// IPCOperationTypeReceive: Bytes or a message taken from the channel.
	IPCOperationTypeReceive = "receive"
	// IPCOperationTypeOpen: An existing queue or shared-memory object opened.
	IPCOperationTypeOpen = "open"
	// IPCOperationTypeCreate: A queue or shared-memory object created.
	IPCOperationTypeCreate = "create"
	// IPCOperationTypeAttach: Shared memory mapped into the process.
	IPCOperationTypeAttach = "attach"
	// IPCOperationTypeDetach: Shared memory unmapped.
	IPCOperationTypeDetach = "detach"
	// IPCOperationTypeUnlink: A queue or shared-memory object removed.
	IPCOperationTypeUnlink = "unlink"
	// IPCOperationTypeWait: A wait for another process (a futex in shared memory, mq_notify).
	IPCOperationTypeWait = "wait"
	// IPCOperationTypeWake: A wake-up of waiting processes (a futex in shared memory).
	IPCOperationTypeWake = "wake"
)

// AttrIPCOperationName: The system call that performed the operation.
const AttrIPCOperationName = "ipc.operation.name"

// AttrIPCChannelID: An identifier of the channel that both ends share, stable for the channel's life.
const AttrIPCChannelID = "ipc.channel.id"

// AttrIPCChannelName: What a person recognises the channel by, from this end.
const AttrIPCChannelName = "ipc.channel.name"

// AttrIPCChannelAnonymous: Whether the channel has no name anyone else could open (an anonymous pipe, a socketpair).
const AttrIPCChannelAnonymous = "ipc.channel.anonymous"

// AttrIPCPeerProcessPID: The process at the other end; for a receive, the sender of its bytes.
const AttrIPCPeerProcessPID = "ipc.peer.process.pid"

// AttrIPCPeerProcessExecutableName: The name of the process at the other end.
const AttrIPCPeerProcessExecutableName = "ipc.peer.process.executable.name"

// AttrIPCThreadTID: The thread that performed the operation.
const AttrIPCThreadTID = "ipc.thread.tid"

// AttrIPCSignalName: The signal a signal operation carried.
const AttrIPCSignalName = "ipc.signal.name"

// AttrIPCPayloadSize: Bytes the operation moved.
const AttrIPCPayloadSize = "ipc.payload.size"

// AttrIPCPayloadCapturedSize: Bytes of the payload captured into the ipc.payload event.
const AttrIPCPayloadCapturedSize = "ipc.payload.captured_size"

// AttrIPCPayloadTruncated: Whether fewer payload bytes were captured than moved.
const AttrIPCPayloadTruncated = "ipc.payload.truncated"

// AttrIPCQueueDepth: Messages left in a message queue after the operation.
const AttrIPCQueueDepth = "ipc.queue.depth"

// AttrIPCMessageType: A queued message's priority (POSIX) or mtype (System V).
const AttrIPCMessageType = "ipc.message.type"

// AttrIPCShmSize: Bytes of the shared-memory segment an operation created, opened, attached or detached.
const AttrIPCShmSize = "ipc.shm.size"

// AttrIPCOperationCount: Operations this span stands for, when the kernel coalesced a run of same-direction operations of one thread on one channel into one record; ipc.payload.size is then their total bytes, the span starts when the first began and ends when the last ended. Absent means 1.
const AttrIPCOperationCount = "ipc.operation.count"

// AttrIPCDirection: Which way bytes went, for ipc.io.
const AttrIPCDirection = "ipc.direction"

const (
	// IPCDirectionSend: Bytes put into a channel.
	IPCDirectionSend = "send"
	// IPCDirectionReceive: Bytes taken from a channel.
	IPCDirectionReceive = "receive"
)

// AttrIPCDropReason: Where icptrack lost data, for icptrack.events.dropped.
const AttrIPCDropReason = "ipc.drop.reason"

const (
	// IPCDropReasonRingBuffer: The kernel's ring buffer was full.
	IPCDropReasonRingBuffer = "ring_buffer"
	// IPCDropReasonExportQueue: The export queue was full, or a backend refused the data for good.
	IPCDropReasonExportQueue = "export_queue"
)

// AttrIPCSinkName: The output of icptrack's pipeline a self-metric is about: events, summary, spans, metrics, logs, store, syslog, postgres.
const AttrIPCSinkName = "ipc.sink.name"

// AttrIPCReplayCapture: The capture a replayed span or metric came from (icptrack replay), on its Resource: the data is not live, and its timestamps are the capture's, or shifted. Absent on live data.
const AttrIPCReplayCapture = "ipc.replay.capture"

// AttrIPCPayloadContent: The captured bytes, base64.
const AttrIPCPayloadContent = "ipc.payload.content"

// EventIPCPayload: The first bytes an operation moved, when payload capture is on.
const EventIPCPayload = "ipc.payload"

// MetricIPCOperationDuration: Time spent in IPC operations.
const (
	MetricIPCOperationDuration            = "ipc.operation.duration"
	MetricIPCOperationDurationUnit        = "s"
	MetricIPCOperationDurationDescription = "Time spent in IPC operations."
)

// MetricIPCSentMessages: Sends (writes and messages) into IPC channels.
const (
	MetricIPCSentMessages            = "ipc.sent.messages"
	MetricIPCSentMessagesUnit        = "{message}"
	MetricIPCSentMessagesDescription = "Sends (writes and messages) into IPC channels."
)

// MetricIPCReceivedMessages: Receives (reads and messages) from IPC channels.
const (
	MetricIPCReceivedMessages            = "ipc.received.messages"
	MetricIPCReceivedMessagesUnit        = "{message}"
	MetricIPCReceivedMessagesDescription = "Receives (reads and messages) from IPC channels."
)

// MetricIPCIO: Bytes moved through IPC channels.
const (
	MetricIPCIO            = "ipc.io"
	MetricIPCIOUnit        = "By"
	MetricIPCIODescription = "Bytes moved through IPC channels."
)

// MetricIPCChannelBacklog: What waits in channels, summed per mechanism - bytes for streams, messages for queues and datagrams.
const (
	MetricIPCChannelBacklog            = "ipc.channel.backlog"
	MetricIPCChannelBacklogUnit        = "{item}"
	MetricIPCChannelBacklogDescription = "What waits in channels, summed per mechanism - bytes for streams, messages for queues and datagrams."
)

// MetricIPCShmAttachments: Shared-memory attachments held by traced processes.
const (
	MetricIPCShmAttachments            = "ipc.shm.attachments"
	MetricIPCShmAttachmentsUnit        = "{attachment}"
	MetricIPCShmAttachmentsDescription = "Shared-memory attachments held by traced processes."
)

// MetricIcptrackEventsProcessed: IPC operations icptrack read from the kernel.
const (
	MetricIcptrackEventsProcessed            = "icptrack.events.processed"
	MetricIcptrackEventsProcessedUnit        = "{event}"
	MetricIcptrackEventsProcessedDescription = "IPC operations icptrack read from the kernel."
)

// MetricIcptrackEventsDropped: IPC operations (or their spans) icptrack lost.
const (
	MetricIcptrackEventsDropped            = "icptrack.events.dropped"
	MetricIcptrackEventsDroppedUnit        = "{event}"
	MetricIcptrackEventsDroppedDescription = "IPC operations (or their spans) icptrack lost."
)

// MetricIcptrackSinkWritten: IPC operations an output of icptrack's pipeline wrote, or handed on, for good.
const (
	MetricIcptrackSinkWritten            = "icptrack.sink.written"
	MetricIcptrackSinkWrittenUnit        = "{event}"
	MetricIcptrackSinkWrittenDescription = "IPC operations an output of icptrack's pipeline wrote, or handed on, for good."
)

// MetricIcptrackSinkDropped: IPC operations an output of icptrack's pipeline lost: its queue was full, or its backend refused them for good.
const (
	MetricIcptrackSinkDropped            = "icptrack.sink.dropped"
	MetricIcptrackSinkDroppedUnit        = "{event}"
	MetricIcptrackSinkDroppedDescription = "IPC operations an output of icptrack's pipeline lost: its queue was full, or its backend refused them for good."
)

// MetricIcptrackSinkLagging: IPC operations an output of icptrack's pipeline has taken and not written yet.
const (
	MetricIcptrackSinkLagging            = "icptrack.sink.lagging"
	MetricIcptrackSinkLaggingUnit        = "{event}"
	MetricIcptrackSinkLaggingDescription = "IPC operations an output of icptrack's pipeline has taken and not written yet."
)

// MetricIcptrackSpansSampledOut: IPC operations not exported as spans because their trace was sampled out (--trace-sample-ratio, --max-spans-per-second). They are not lost: the metrics and the event log still count them.
const (
	MetricIcptrackSpansSampledOut            = "icptrack.spans.sampled_out"
	MetricIcptrackSpansSampledOutUnit        = "{span}"
	MetricIcptrackSpansSampledOutDescription = "IPC operations not exported as spans because their trace was sampled out (--trace-sample-ratio, --max-spans-per-second). They are not lost: the metrics and the event log still count them."
)

// OpenTelemetry attributes icptrack reuses as they are.
const (
	AttrContainerID              = "container.id"
	AttrErrorType                = "error.type"
	AttrHostName                 = "host.name"
	AttrMessagingDestinationName = "messaging.destination.name"
	AttrMessagingMessageBodySize = "messaging.message.body.size"
	AttrMessagingOperationType   = "messaging.operation.type"
	AttrMessagingSystem          = "messaging.system"
	AttrNetworkPeerAddress       = "network.peer.address"
	AttrNetworkPeerPort          = "network.peer.port"
	AttrNetworkTransport         = "network.transport"
	AttrProcessCommandLine       = "process.command_line"
	AttrProcessExecutableName    = "process.executable.name"
	AttrProcessExecutablePath    = "process.executable.path"
	AttrProcessParentPID         = "process.parent_pid"
	AttrProcessPID               = "process.pid"
	AttrServiceName              = "service.name"
)
