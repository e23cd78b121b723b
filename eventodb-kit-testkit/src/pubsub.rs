//! In-memory pub/sub of write notifications ("pokes"), per namespace (protocol §6.6).

use std::sync::Mutex;

use tokio::sync::mpsc;

/// A write notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Poke {
    pub(crate) namespace: String,
    pub(crate) stream: String,
    pub(crate) position: i64,
    pub(crate) global_position: i64,
}

enum Sender {
    Unbounded(mpsc::UnboundedSender<Poke>),
    /// The real server's channel of 100: a full channel drops the poke silently.
    Bounded(mpsc::Sender<Poke>),
}

/// The receiving end of one subscription.
pub(crate) enum Receiver {
    Unbounded(mpsc::UnboundedReceiver<Poke>),
    Bounded(mpsc::Receiver<Poke>),
}

impl Receiver {
    /// The next poke; `None` once the hub forgot this subscriber.
    ///
    /// # Cancel safety
    /// Cancel safe (both channel kinds are).
    pub(crate) async fn recv(&mut self) -> Option<Poke> {
        match self {
            Receiver::Unbounded(r) => r.recv().await,
            Receiver::Bounded(r) => r.recv().await,
        }
    }
}

struct Subscriber {
    namespace: String,
    sender: Sender,
}

/// All live subscribers.
#[derive(Default)]
pub(crate) struct Hub {
    subscribers: Mutex<Vec<Subscriber>>,
}

impl Hub {
    /// Registers a subscriber of one namespace. `buffer` emulates the server's bounded channel.
    pub(crate) fn subscribe(&self, namespace: &str, buffer: Option<usize>) -> Receiver {
        let (sender, receiver) = match buffer {
            Some(n) => {
                let (tx, rx) = mpsc::channel(n.max(1));
                (Sender::Bounded(tx), Receiver::Bounded(rx))
            }
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Sender::Unbounded(tx), Receiver::Unbounded(rx))
            }
        };
        self.lock().push(Subscriber {
            namespace: namespace.to_owned(),
            sender,
        });
        receiver
    }

    /// Delivers a poke to the subscribers of its namespace; forgets closed ones.
    pub(crate) fn publish(&self, poke: &Poke) {
        self.lock().retain(|sub| {
            if sub.namespace != poke.namespace {
                return match &sub.sender {
                    Sender::Unbounded(s) => !s.is_closed(),
                    Sender::Bounded(s) => !s.is_closed(),
                };
            }
            match &sub.sender {
                Sender::Unbounded(s) => s.send(poke.clone()).is_ok(),
                Sender::Bounded(s) => match s.try_send(poke.clone()) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                },
            }
        });
    }

    /// Drops every subscriber (pokes do not survive a restart).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Number of subscribers whose connection is still open.
    pub(crate) fn len(&self) -> usize {
        let mut subscribers = self.lock();
        subscribers.retain(|sub| match &sub.sender {
            Sender::Unbounded(s) => !s.is_closed(),
            Sender::Bounded(s) => !s.is_closed(),
        });
        subscribers.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poke(ns: &str, gp: i64) -> Poke {
        Poke {
            namespace: ns.into(),
            stream: "s".into(),
            position: 0,
            global_position: gp,
        }
    }

    #[tokio::test]
    async fn delivers_per_namespace() {
        let hub = Hub::default();
        let mut a = hub.subscribe("a", None);
        let mut b = hub.subscribe("b", None);
        hub.publish(&poke("a", 1));
        hub.publish(&poke("b", 2));
        assert_eq!(a.recv().await.unwrap().global_position, 1);
        assert_eq!(b.recv().await.unwrap().global_position, 2);
    }

    #[tokio::test]
    async fn a_full_bounded_buffer_drops_silently() {
        let hub = Hub::default();
        let mut r = hub.subscribe("a", Some(2));
        for gp in 1..=5 {
            hub.publish(&poke("a", gp));
        }
        assert_eq!(r.recv().await.unwrap().global_position, 1);
        assert_eq!(r.recv().await.unwrap().global_position, 2);
        hub.publish(&poke("a", 6));
        assert_eq!(r.recv().await.unwrap().global_position, 6);
    }

    #[test]
    fn closed_subscribers_are_forgotten() {
        let hub = Hub::default();
        let open = hub.subscribe("a", None);
        drop(hub.subscribe("a", None));
        assert_eq!(hub.len(), 1);
        drop(open);
        hub.publish(&poke("a", 1));
        assert_eq!(hub.len(), 0);
    }
}
