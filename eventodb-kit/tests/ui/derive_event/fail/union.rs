use eventodb_kit::Event;

#[derive(Event)]
#[event(category = "user", stream = "user-{user_id}")]
union UserCreated {
    user_id: u64,
}

fn main() {}
