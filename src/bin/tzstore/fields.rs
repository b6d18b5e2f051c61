//! A list of named values printed either as aligned text lines or as one
//! JSON object, so every command's text and `--json` outputs say the same.

use serde_json::{Map, Value};

/// Named values in print order: the JSON key, the JSON value and the text.
#[derive(Default)]
pub struct Fields(Vec<(String, Value, String)>);

impl Fields {
    /// Adds `key` (JSON name; the text label is it with spaces) with its
    /// JSON `value` and its `text`.
    pub fn add(&mut self, key: &str, value: impl Into<Value>, text: impl Into<String>) {
        self.0.push((key.to_string(), value.into(), text.into()));
    }

    /// Adds a value whose text is its JSON value unquoted.
    pub fn plain(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Null => "none".into(),
            other => other.to_string(),
        };
        self.0.push((key.to_string(), value, text));
    }

    /// Prints the fields on stdout, as text or JSON.
    pub fn print(&self, json: bool) {
        if json {
            let map: Map<String, Value> = self
                .0
                .iter()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect();
            println!("{}", Value::Object(map));
        } else {
            let width = self.0.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0) + 2;
            for (k, _, t) in &self.0 {
                println!("{:<width$}{t}", k.replace('_', " "));
            }
        }
    }
}
