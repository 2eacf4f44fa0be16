//! Word splitting that runs alongside expansion.
//!
//! Splitting has to know where each character came from: whitespace typed bare in the
//! text or produced by an unquoted expansion separates words, while quoted or escaped
//! characters never do. So the expander feeds pieces in as it produces them, tagged
//! as splittable or literal, instead of splitting the finished string.

#[derive(Debug, Default)]
pub(super) struct WordSplitter {
    current: String,
    words: Vec<String>,
    /// A quoted or escaped piece has started the current word, even if it added no
    /// characters. Whitespace after such an empty piece does not end a word, because
    /// BuildKit only ever emits non-empty words.
    in_word: bool,
}

impl WordSplitter {
    /// A character whose whitespace separates words.
    pub(super) fn push_splittable(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.current.is_empty() {
                self.words.push(std::mem::take(&mut self.current));
                self.in_word = false;
            }
        } else {
            self.push_literal(ch);
        }
    }

    /// A character that belongs to the current word whatever it is.
    pub(super) fn push_literal(&mut self, ch: char) {
        self.current.push(ch);
        self.in_word = true;
    }

    pub(super) fn push_splittable_str(&mut self, text: &str) {
        text.chars().for_each(|ch| self.push_splittable(ch));
    }

    pub(super) fn push_literal_str(&mut self, text: &str) {
        self.current.push_str(text);
        self.in_word = true;
    }

    pub(super) fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.words.push(self.current);
        }
        self.words
    }
}

#[cfg(test)]
mod tests {
    use super::WordSplitter;

    #[test]
    fn splittable_whitespace_separates_and_collapses() {
        let mut words = WordSplitter::default();
        words.push_splittable_str("  a  b ");
        assert_eq!(words.finish(), ["a", "b"]);
    }

    #[test]
    fn literal_whitespace_stays_inside_the_word() {
        let mut words = WordSplitter::default();
        words.push_splittable_str("a");
        words.push_literal_str(" x ");
        words.push_splittable_str("b c");
        assert_eq!(words.finish(), ["a x b", "c"]);
    }

    #[test]
    fn empty_literal_piece_makes_no_word() {
        let mut words = WordSplitter::default();
        words.push_literal_str("");
        words.push_splittable_str(" a");
        assert_eq!(words.finish(), ["a"]);
    }
}
