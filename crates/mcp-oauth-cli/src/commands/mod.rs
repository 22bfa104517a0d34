pub mod call;
pub mod common;
pub mod completions;
pub mod doctor;
pub mod login;
pub mod logout;
pub mod status;
pub mod token;
