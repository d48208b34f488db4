//! Command lines as a POSIX shell reads them: what the reports and run logs print, so that a
//! line pasted into a shell runs exactly the command that ran, whatever its arguments hold.
//!
//! Owns: quoting. Never: runs a shell (cbnn starts every program with an argument vector).

/// `arg` as one shell word: unchanged when every character is one no shell treats specially,
/// else in single quotes (inside which nothing is special; a quote is written `'\''`).
pub fn quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=,+@%-".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// `cbnn` and `argv` as one line of shell words.
pub fn command_line(argv: &[String]) -> String {
    std::iter::once("cbnn".to_string())
        .chain(argv.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument, printed and pasted into `sh`, comes back as the same word.
    #[test]
    fn a_printed_line_gives_the_shell_back_every_argument() {
        let args: Vec<String> = [
            "plain-arg_1.json",
            "",
            "two words",
            "`touch pwned`",
            "$(touch pwned)",
            "$HOME",
            "a;b&c|d",
            "(x)",
            "<in >out",
            "#comment",
            "it's",
            "\"double\"",
            "back\\slash",
            "line\nbreak",
            "tab\there",
            "~user",
            "{a,b}",
            "*.json",
            "?",
            "[ab]",
            "!bang",
            "ünïcode",
            "=leading",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let line = command_line(&args);
        assert!(line.starts_with("cbnn "));
        // The shell runs `printf` in cbnn's place, each word ended by a zero byte.
        let script = format!("printf '%s\\0' {}", &line["cbnn ".len()..]);
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        assert!(out.status.success());
        let words: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect();
        assert_eq!(words, args);
    }
}
