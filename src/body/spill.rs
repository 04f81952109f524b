//! The temporary file a replay buffer spills to (feature `spill`), so that a
//! body larger than memory can follow a 307.
//!
//! The file is private: `tempfile` creates it with mode 0600, and on Linux
//! unnamed from the start (`O_TMPFILE`), elsewhere under an unpredictable
//! name that is unlinked at once. No other user can open it or plant a file
//! in its way, and nothing is left behind when the chain ends, fails, is
//! cancelled or the process dies (a name never existed, or was gone at once;
//! on Windows the file is delete-on-close). Reads and writes are
//! synchronous, in chunks of at most [`READ_CHUNK`] bytes, on the task that
//! sends the body: page-cache speed, but a slow disk slows the upload.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use bytes::Bytes;

/// The most read back from the file at a time.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// An append-only temporary file.
#[derive(Debug)]
pub(crate) struct SpillFile {
    file: File,
    len: u64,
}

impl SpillFile {
    /// A new private file in `dir`, or in `std::env::temp_dir()`.
    pub(crate) fn create(dir: Option<&Path>) -> io::Result<Self> {
        let file = match dir {
            Some(dir) => tempfile::tempfile_in(dir)?,
            None => tempfile::tempfile()?,
        };
        // tempfile's `O_TMPFILE` path (Linux) leaves the mode to the umask
        // (0644 as a rule); its named fallback uses 0600. Make it 0600 in
        // every case: the file has no name while it is 0644, so no one can
        // have opened it meanwhile.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(Self { file, len: 0 })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back() {
        let mut file = SpillFile::create(None).unwrap();
        file.append(b"hello ").unwrap();
        file.append(&vec![b'x'; READ_CHUNK + 10]).unwrap();
        assert_eq!(file.len(), 6 + READ_CHUNK as u64 + 10);
        assert_eq!(&file.read_at(0).unwrap()[..6], b"hello ");
        assert_eq!(file.read_at(0).unwrap().len(), READ_CHUNK);
        assert_eq!(file.read_at(6 + READ_CHUNK as u64).unwrap().len(), 10);
        assert!(file.read_at(file.len()).unwrap().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_and_nameless() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = SpillFile::create(Some(dir.path())).unwrap();
        let mode = file.file.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no name in the dir"
        );
    }
}
