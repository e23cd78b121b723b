use std::marker::PhantomData;

use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};

struct Generic<E> {
    event: PhantomData<fn() -> E>,
}

#[consumer(category = "user")]
impl<E: Event> Generic<E> {
    async fn any(&self, _event: E) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
