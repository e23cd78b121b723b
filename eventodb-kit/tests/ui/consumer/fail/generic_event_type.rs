use eventodb_kit::consumer::HandlerError;
use eventodb_kit::{Event, consumer};

struct Users;

#[consumer(category = "user")]
impl Users {
    async fn any<E: Event>(&self, _event: E) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
