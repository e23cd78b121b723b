//! Build-script code generation: a folder of JSON Schema files becomes typed eventodb-kit events.
