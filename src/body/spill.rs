//! The temporary file a replay buffer spills to (feature `spill`), so that a
//! body larger than memory can follow a 307.
//!
//! The file is removed when the buffer goes (the chain ends, fails or is
//! cancelled); on Unix its name is unlinked as soon as it is created, so
//! not even a crash leaves it behind. Reads and writes are synchronous, in
//! chunks of at most [`READ_CHUNK`] bytes, on the task that sends the body:
//! page-cache speed, but a slow disk slows the upload.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// The most read back from the file at a time.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// An append-only temporary file.
#[derive(Debug)]
pub(crate) struct SpillFile {
    file: File,
    /// Still to remove on drop (where it could not be unlinked at once).
    path: Option<PathBuf>,
    len: u64,
}

impl SpillFile {
    pub(crate) fn create() -> io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "redirect-policy-{}-{}.spill",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // On Unix an open file outlives its name: unlink it now.
        let path = if cfg!(unix) && std::fs::remove_file(&path).is_ok() {
            None
        } else {
            Some(path)
        };
        Ok(Self { file, path, len: 0 })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(self.len))?;
        self.file.write_all(data)?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// Up to [`READ_CHUNK`] bytes from `offset`.
    pub(crate) fn read_at(&mut self, offset: u64) -> io::Result<Bytes> {
        let left = self.len.saturating_sub(offset);
        let want = usize::try_from(left).map_or(READ_CHUNK, |left| left.min(READ_CHUNK));
        let mut buf = vec![0; want];
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back() {
        let mut file = SpillFile::create().unwrap();
        file.append(b"hello ").unwrap();
        file.append(&vec![b'x'; READ_CHUNK + 10]).unwrap();
        assert_eq!(file.len(), 6 + READ_CHUNK as u64 + 10);
        assert_eq!(&file.read_at(0).unwrap()[..6], b"hello ");
        assert_eq!(file.read_at(0).unwrap().len(), READ_CHUNK);
        assert_eq!(file.read_at(6 + READ_CHUNK as u64).unwrap().len(), 10);
        assert!(file.read_at(file.len()).unwrap().is_empty());
    }
}
