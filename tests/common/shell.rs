//! A shell kept open (`docker exec -i CONTAINER sh`, or any `sh` reading its
//! standard input) that runs one script after another: a script costs a
//! round trip on its pipes instead of an exec, which on the emulated VM took
//! 0.7 s idle and seconds beside a burner.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// What one script printed, and how it ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Ran {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The shell's process and its pipes; ended when dropped.
pub struct Shell {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Where each script's output waits until it ended, on the shell's side.
    scratch: String,
}

static SHELLS: AtomicUsize = AtomicUsize::new(0);

/// The line that opens each script's answer: status and the two lengths.
const FRAME: &str = "@@dse-shell";

impl Shell {
    /// Starts `cmd`, a shell that reads scripts from its standard input and
    /// can write files under `scratch_dir`.
    pub fn start(mut cmd: Command, scratch_dir: &str) -> Result<Self, String> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{cmd:?}: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(format!("{cmd:?}: no pipes"));
        };
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            scratch: format!(
                "{scratch_dir}/dse-shell-{}-{}",
                std::process::id(),
                SHELLS.fetch_add(1, Ordering::Relaxed)
            ),
        })
    }

    /// Runs `script` in a subshell of its own (its `exit` ends only it).
    /// Its output goes to files first, so that an answer is framed by
    /// lengths, whatever it holds. `Err` when the shell itself is gone.
    pub fn run(&mut self, script: &str) -> Result<Ran, String> {
        let (out, err) = (
            format!("{}.out", self.scratch),
            format!("{}.err", self.scratch),
        );
        let framed = format!(
            "(\n{script}\n) >{out} 2>{err} </dev/null; \
             echo \"{FRAME} $? $(wc -c <{out}) $(wc -c <{err})\"; cat {out} {err}\n"
        );
        let stdin = self.stdin.as_mut().ok_or("the shell's input is closed")?;
        stdin
            .write_all(framed.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to the shell: {e}"))?;
        let mut header = String::new();
        let n = (self.stdout.read_line(&mut header)).map_err(|e| format!("the shell: {e}"))?;
        if n == 0 {
            return Err("the shell ended".into());
        }
        let fields: Vec<&str> = header.split_whitespace().collect();
        let number = |i: usize| -> Result<usize, String> {
            (fields.get(i).and_then(|f| f.parse().ok()))
                .ok_or_else(|| format!("the shell answered {header:?}, not a frame"))
        };
        if fields.first() != Some(&FRAME) {
            return Err(format!("the shell answered {header:?}, not a frame"));
        }
        let (status, out_len, err_len) = (number(1)?, number(2)?, number(3)?);
        let mut take = |len: usize| -> Result<String, String> {
            let mut bytes = vec![0; len];
            (self.stdout.read_exact(&mut bytes)).map_err(|e| format!("the shell: {e}"))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        let stdout = take(out_len)?;
        let stderr = take(err_len)?;
        Ok(Ran {
            status: status as i32,
            stdout,
            stderr,
        })
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // End of input ends the shell once it has removed its files; the
        // kill is for one that does not end within a few seconds.
        if let Some(mut stdin) = self.stdin.take() {
            let bye = format!("rm -f {0}.out {0}.err; exit\n", self.scratch);
            let _ = stdin.write_all(bye.as_bytes());
        }
        for _ in 0..300 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Shell {
        let mut cmd = Command::new("sh");
        cmd.arg("-s");
        Shell::start(cmd, &std::env::temp_dir().display().to_string()).unwrap()
    }

    #[test]
    fn each_script_gets_its_own_output_status_and_errors() {
        let mut sh = local();
        let ran = |sh: &mut Shell, script: &str| sh.run(script).unwrap();
        assert_eq!(
            ran(&mut sh, "echo one; printf 'no newline'"),
            Ran {
                status: 0,
                stdout: "one\nno newline".into(),
                stderr: String::new()
            }
        );
        // A frame-like line and an exit inside a script end neither the
        // answer nor the shell.
        assert_eq!(
            ran(&mut sh, "echo '@@dse-shell 0 99 99'; echo oops >&2; exit 4"),
            Ran {
                status: 4,
                stdout: "@@dse-shell 0 99 99\n".into(),
                stderr: "oops\n".into()
            }
        );
        // A script that reads its input finds none, so the next script is
        // not swallowed.
        assert_eq!(ran(&mut sh, "cat; echo after").stdout, "after\n");
        assert_eq!(ran(&mut sh, "X=$((6 * 7)); echo $X").stdout, "42\n");
    }

    #[test]
    fn a_shell_that_ended_is_an_error_not_an_empty_answer() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 0"]);
        let mut sh = Shell::start(cmd, "/tmp").unwrap();
        let err = sh.run("echo hi").unwrap_err();
        assert!(err.contains("ended") || err.contains("writing"), "{err}");
    }
}
