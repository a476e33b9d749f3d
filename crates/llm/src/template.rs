//! The model's own chat template (`tokenizer.chat_template`), rendered the way Hugging Face
//! `apply_chat_template` does: Jinja with `trim_blocks` and `lstrip_blocks`, Python string
//! methods, `messages`, `add_generation_prompt`, `bos_token` and `eos_token`.

use crate::error::{LlmError, Result};
use minijinja::{context, Environment, Error, ErrorKind};
use percept_core::{Turn, TurnRole};
use serde::Serialize;

const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

impl From<&Turn> for Message {
    fn from(t: &Turn) -> Self {
        let role = match t.role {
            TurnRole::System => "system",
            TurnRole::User => "user",
            TurnRole::Assistant => "assistant",
        };
        Message::new(role, t.text.clone())
    }
}

pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    /// Set when the model's template was missing or unusable and ChatML is used instead.
    pub warning: Option<String>,
}

fn raise_exception(msg: String) -> std::result::Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

fn new_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env
}

impl ChatTemplate {
    /// `source` is the GGUF's `tokenizer.chat_template`, if any.
    pub fn new(source: Option<&str>, bos: &str, eos: &str) -> Self {
        let mut env = new_env();
        let warning = match source {
            None => Some("model has no chat template; using ChatML".to_string()),
            Some(src) => match env.add_template_owned("chat", src.to_string()) {
                Ok(()) => None,
                Err(e) => Some(format!(
                    "model chat template does not parse ({e}); using ChatML"
                )),
            },
        };
        if warning.is_some() {
            env = new_env();
            // CHATML is a constant that parses; a failure here would be a bug caught by tests.
            let _ = env.add_template("chat", CHATML);
        }
        ChatTemplate {
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
            warning,
        }
    }

    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| LlmError::Template(e.to_string()))?;
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos,
            eos_token => &self.eos,
        })
        .map_err(|e| LlmError::Template(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_fallback_renders_and_warns() {
        let t = ChatTemplate::new(None, "", "");
        assert!(t.warning.is_some());
        let out = t
            .render(&[Message::new("user", "hi")], true)
            .unwrap_or_default();
        assert_eq!(
            out,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn broken_template_falls_back() {
        let t = ChatTemplate::new(Some("{% for %}"), "", "");
        assert!(t.warning.is_some());
    }
}
