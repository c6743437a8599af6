//! A [`Message`] as bytes: its postcard encoding and decoding, and its variant's name, which
//! logs and errors show instead of the payload.

use super::Message;
use crate::error::{Error, ErrorKind, Result};

impl Message {
    /// The variant's name, for logs and errors (never the payload, which may hold the token).
    pub fn name(&self) -> &'static str {
        match self {
            Message::RegisterNode(_) => "RegisterNode",
            Message::Registered { .. } => "Registered",
            Message::Heartbeat(_) => "Heartbeat",
            Message::UnregisterNode => "UnregisterNode",
            Message::StatusRequest => "StatusRequest",
            Message::Status(_) => "Status",
            Message::Stop => "Stop",
            Message::Stopping => "Stopping",
            Message::Failed { .. } => "Failed",
            Message::RegisterJob { .. } => "RegisterJob",
            Message::AttachJob { .. } => "AttachJob",
            Message::JobRegistered { .. } => "JobRegistered",
            Message::UploadExe { .. } => "UploadExe",
            Message::ExeStored => "ExeStored",
            Message::FetchExe { .. } => "FetchExe",
            Message::ExeChunk { .. } => "ExeChunk",
            Message::SubmitTask(_) => "SubmitTask",
            Message::PutObject { .. } => "PutObject",
            Message::WatchObject { .. } => "WatchObject",
            Message::ObjectReady { .. } => "ObjectReady",
            Message::ObjectFailed { .. } => "ObjectFailed",
            Message::FetchObject { .. } => "FetchObject",
            Message::ObjectData { .. } => "ObjectData",
            Message::ExecuteTask(_) => "ExecuteTask",
            Message::TaskFinished { .. } => "TaskFinished",
            Message::WorkerReady { .. } => "WorkerReady",
            Message::RunTask { .. } => "RunTask",
            Message::TaskResult { .. } => "TaskResult",
            Message::TaskBlocked { .. } => "TaskBlocked",
            Message::TaskUnblocked { .. } => "TaskUnblocked",
            Message::ReleaseObjects { .. } => "ReleaseObjects",
            Message::EscapedObjects { .. } => "EscapedObjects",
            Message::DeleteObjects { .. } => "DeleteObjects",
            Message::ObjectChunk { .. } => "ObjectChunk",
            Message::CreateActor(_) => "CreateActor",
            Message::SubmitActorCall { .. } => "SubmitActorCall",
            Message::KillActor { .. } => "KillActor",
            Message::ReleaseActor { .. } => "ReleaseActor",
            Message::EscapedActor { .. } => "EscapedActor",
            Message::GetActor { .. } => "GetActor",
            Message::ActorFound { .. } => "ActorFound",
            Message::ListNamedActors => "ListNamedActors",
            Message::NamedActors { .. } => "NamedActors",
            Message::NodeTotals { .. } => "NodeTotals",
            Message::ActorExiting { .. } => "ActorExiting",
            Message::StartActor(_) => "StartActor",
            Message::ExecuteActorCall(_) => "ExecuteActorCall",
            Message::StopActor { .. } => "StopActor",
            Message::ActorStarted { .. } => "ActorStarted",
            Message::ActorExited { .. } => "ActorExited",
            Message::HostActor { .. } => "HostActor",
            Message::ActorHosted { .. } => "ActorHosted",
            Message::RunActorCall { .. } => "RunActorCall",
            Message::ValueChunk { .. } => "ValueChunk",
            Message::Ping => "Ping",
            Message::Pong => "Pong",
            Message::AllocObject { .. } => "AllocObject",
            Message::ObjectAllocated { .. } => "ObjectAllocated",
            Message::SealObject { .. } => "SealObject",
            Message::SharedValue { .. } => "SharedValue",
            Message::AllocValue { .. } => "AllocValue",
            Message::ValueAllocated { .. } => "ValueAllocated",
            Message::HoldTask(_) => "HoldTask",
            Message::StartTask { .. } => "StartTask",
            Message::CancelJob { .. } => "CancelJob",
            Message::ObjectUnreachable { .. } => "ObjectUnreachable",
            Message::JoinNode { .. } => "JoinNode",
            Message::Rejoin { .. } => "Rejoin",
            Message::DeadNodesRequest => "DeadNodesRequest",
            Message::DeadNodes(_) => "DeadNodes",
            Message::ForwardOutput => "ForwardOutput",
            Message::WorkerOutput(_) => "WorkerOutput",
            Message::DrainOutput { .. } => "DrainOutput",
            Message::OutputDrained { .. } => "OutputDrained",
            Message::MuteOutput { .. } => "MuteOutput",
        }
    }

    /// The postcard encoding of this message.
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self)
            .map_err(|e| Error::serialization(&format!("encoding a {} message", self.name()), e))
    }

    /// Decodes a message from one frame's payload.
    pub fn decode(payload: &[u8]) -> Result<Message> {
        postcard::from_bytes(payload).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("malformed message ({} bytes): {e}", payload.len()),
            )
        })
    }
}
