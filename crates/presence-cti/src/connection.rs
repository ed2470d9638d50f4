//! One client connection: reads frames, answers bad ones itself, forwards good ones to the
//! engine, and writes the engine's events from the connection's queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures_util::SinkExt;
use governor::DefaultDirectRateLimiter;
use presence_tlib::{ClientId, ClientMessage, ErrorCode, LinkInput, MessageError, ServerEvent};
use tokio::sync::{Notify, mpsc};

use crate::server::Shared;
use crate::sink::Route;

/// How long a close frame may take to go out before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The most queued events written, after the one the connection woke for, before a flush.
const EVENT_BATCH: usize = 64;

/// Why a connection ends.
#[derive(Debug)]
enum End {
    /// The client closed it (close frame or end of stream).
    ClientClosed,
    /// The bridge is shutting down.
    Shutdown,
    /// The client fell behind: its queue filled up.
    Kicked,
    /// A frame beyond the WebSocket layer's cap.
    TooBig,
    /// A read or write failed.
    Failed(axum::Error),
}

impl End {
    /// How the logs name it.
    fn as_str(&self) -> &'static str {
        match self {
            End::ClientClosed => "closed by the client",
            End::Shutdown => "bridge shutting down",
            End::Kicked => "fell behind",
            End::TooBig => "message too big",
            End::Failed(_) => "read or write failed",
        }
    }
}

pub(crate) struct Connection {
    socket: WebSocket,
    shared: Arc<Shared>,
    client: ClientId,
    limiter: DefaultDirectRateLimiter,
    /// A valid message waiting for room in the engine's input channel; while one waits,
    /// the socket is not read (back-pressure on this client only).
    pending: Option<LinkInput>,
}

impl Connection {
    /// Serves one upgraded connection to its end.
    pub(crate) async fn run(
        socket: WebSocket,
        shared: Arc<Shared>,
        client: ClientId,
        peer: SocketAddr,
    ) {
        let (queue, mut events) = mpsc::channel(shared.limits.queue);
        let kick = Arc::new(Notify::new());
        shared.routes.insert(
            client,
            Route {
                queue,
                kick: kick.clone(),
            },
        );
        tracing::info!(%client, %peer, "contact-centre client connected");
        let inputs = shared.inputs.clone();
        let engine_up = inputs
            .send(LinkInput::Connected(client, peer.to_string()))
            .await
            .is_ok();
        let mut conn = Connection {
            socket,
            limiter: DefaultDirectRateLimiter::direct(shared.limits.quota),
            shared,
            client,
            pending: None,
        };
        let end = if engine_up {
            tokio::select! {
                biased;
                () = kick.notified() => End::Kicked,
                end = conn.pump(&mut events) => end,
            }
        } else {
            End::Shutdown
        };
        let close = match &end {
            End::ClientClosed => None,
            End::Shutdown => Some((close_code::AWAY, "bridge shutting down")),
            End::Kicked => Some((
                close_code::POLICY,
                "client fell behind: outbound queue full",
            )),
            End::TooBig => Some((close_code::SIZE, "message too big")),
            End::Failed(_) => Some((close_code::PROTOCOL, "read or write failed")),
        };
        if let Some((code, reason)) = close {
            let frame = Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }));
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.socket.send(frame)).await;
            // Dropping the socket then closes it without a reset, reading and discarding
            // what the client still sends for a moment (the listener's lingering close):
            // the client receives the close frame even in the middle of a huge frame.
        }
        conn.shared.routes.remove(client);
        match end {
            End::Kicked => {
                tracing::warn!(%client, %peer, queue = conn.shared.limits.queue, "contact-centre client disconnected: it fell behind");
            }
            End::Failed(error) => {
                tracing::info!(%client, %peer, %error, "contact-centre client disconnected after an error");
            }
            other => {
                tracing::info!(%client, %peer, reason = other.as_str(), "contact-centre client disconnected");
            }
        }
        let _ = inputs.send(LinkInput::Disconnected(client)).await;
    }

    /// Moves frames both ways until the connection ends.
    async fn pump(&mut self, events: &mut mpsc::Receiver<ServerEvent>) -> End {
        let mut stop = self.shared.stop.clone();
        let inputs = self.shared.inputs.clone();
        loop {
            tokio::select! {
                biased;
                () = async { drop(stop.wait_for(|stopping| *stopping).await) } => return End::Shutdown,
                event = events.recv() => match event {
                    Some(event) => {
                        if let Err(error) = self.write_events(event, events).await {
                            return End::Failed(error);
                        }
                    }
                    // The sink dropped the route: the client is being kicked.
                    None => return End::Kicked,
                },
                permit = inputs.reserve(), if self.pending.is_some() => {
                    let pending = self.pending.take();
                    match (permit, pending) {
                        (Ok(permit), Some(input)) => permit.send(input),
                        (Err(_), Some(LinkInput::Message(_, msg))) => {
                            let answer = ServerEvent::error(
                                Some(msg.reference_id),
                                ErrorCode::ServiceUnavailable,
                                "the bridge is not serving requests now (shutting down?): try again later",
                            );
                            if let Err(error) = self.answer(answer).await {
                                return End::Failed(error);
                            }
                        }
                        _ => {}
                    }
                }
                frame = self.socket.recv(), if self.pending.is_none() => match frame {
                    None | Some(Ok(Message::Close(_))) => return End::ClientClosed,
                    Some(Ok(message)) => {
                        if let Err(error) = self.on_frame(message).await {
                            return End::Failed(error);
                        }
                    }
                    Some(Err(error)) => return self.on_read_error(error).await,
                },
            }
        }
    }

    /// Handles one data frame: rate limit, size limit, parsing.
    async fn on_frame(&mut self, message: Message) -> Result<(), axum::Error> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let _ = self.limiter.check();
                return self.refuse(MessageError::binary_frame()).await;
            }
            // Pings are answered by the WebSocket layer; pongs need nothing.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return Ok(()),
        };
        let max = self.shared.limits.max_message_bytes;
        if text.len() > max {
            let _ = self.limiter.check();
            return self.refuse(MessageError::too_large(text.len(), max)).await;
        }
        let parsed = ClientMessage::from_json(text.as_str());
        if self.limiter.check().is_err() {
            let reference_id = match &parsed {
                Ok(msg) => Some(msg.reference_id),
                Err(err) => err.reference_id(),
            };
            let limits = &self.shared.limits;
            let answer = ServerEvent::error(
                reference_id,
                ErrorCode::RateLimited,
                format!(
                    "rate limit exceeded: a connection may send {} messages per second (bursts of {}); the message was dropped, send it again later",
                    limits.rate_per_second, limits.burst,
                ),
            );
            return self.answer(answer).await;
        }
        match parsed {
            Ok(msg) => {
                self.pending = Some(LinkInput::Message(self.client, msg));
                Ok(())
            }
            Err(err) => self.refuse(err).await,
        }
    }

    /// A read error: a frame beyond the cap is answered before closing with 1009.
    async fn on_read_error(&mut self, error: axum::Error) -> End {
        let too_big = std::error::Error::source(&error)
            .and_then(|e| e.downcast_ref::<tungstenite::Error>())
            .and_then(|e| match e {
                tungstenite::Error::Capacity(
                    tungstenite::error::CapacityError::MessageTooLong { size, .. },
                ) => Some(*size),
                _ => None,
            });
        match too_big {
            Some(size) => {
                tracing::info!(client = %self.client, size, cap = self.shared.limits.hard_cap, "frame beyond the WebSocket cap: closing");
                let err = MessageError::too_large(size, self.shared.limits.max_message_bytes);
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.refuse(err)).await;
                End::TooBig
            }
            None => End::Failed(error),
        }
    }

    /// Answers a message the link refuses, without involving the engine.
    async fn refuse(&mut self, err: MessageError) -> Result<(), axum::Error> {
        tracing::debug!(client = %self.client, code = %err.code(), error = %err, "message refused");
        self.answer(err.to_event()).await
    }

    /// Writes `first` and the events already queued behind it, with one flush: a burst
    /// of answers costs one write to the socket, not one each.
    async fn write_events(
        &mut self,
        first: ServerEvent,
        events: &mut mpsc::Receiver<ServerEvent>,
    ) -> Result<(), axum::Error> {
        self.socket.feed(Message::text(first.to_json())).await?;
        for _ in 0..EVENT_BATCH {
            let Ok(event) = events.try_recv() else { break };
            self.socket.feed(Message::text(event.to_json())).await?;
        }
        self.socket.flush().await
    }

    async fn answer(&mut self, event: ServerEvent) -> Result<(), axum::Error> {
        self.socket.send(Message::text(event.to_json())).await
    }
}
