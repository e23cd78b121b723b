//! The expansion names everything by absolute path: it works without the prelude, next to
//! items that shadow `String`, `Result`, `format!` and `Event`, and warns about nothing.
#![deny(warnings)]

mod no_prelude {
    #![no_implicit_prelude]

    #[allow(dead_code)]
    struct String;
    #[allow(dead_code)]
    type Result = ();
    #[allow(unused_macros)]
    macro_rules! format {
        ($($t:tt)*) => {
            ()
        };
    }
    #[allow(dead_code)]
    trait Event {}

    #[derive(::serde::Serialize, ::serde::Deserialize, ::eventodb_kit::Event)]
    #[event(category = "user", stream = "user-{id}+{name}", validate = "check")]
    pub(crate) struct Shadowed {
        pub(crate) id: u32,
        pub(crate) name: ::std::string::String,
    }

    fn check(_: &Shadowed) -> ::core::result::Result<(), ::eventodb_kit::ValidationError> {
        ::core::result::Result::Ok(())
    }
}

fn main() {
    use eventodb_kit::Event;
    let event = no_prelude::Shadowed {
        id: 1,
        name: "ann".into(),
    };
    assert_eq!(event.stream_name(), "user-1+ann");
    assert_eq!(event.validate(), Ok(()));
}
