//! A gzip writer that deflates fixed-size chunks on several threads, the way pigz does:
//! each chunk is primed with the previous 32 KiB as dictionary and ends on a sync flush, so
//! the concatenation is one ordinary deflate stream in one gzip member. The bytes depend
//! only on the data, the chunk size and the level, never on the thread count or timing, so
//! layer digests stay reproducible.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::{self, JoinHandle};

use flate2::{Compress, FlushCompress, Status};

const CHUNK: usize = 1 << 20;
const WINDOW: usize = 32 << 10;
// Magic, deflate, no flags, mtime 0, no extra flags, OS unknown: what Go's gzip writes too.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

type Job = JoinHandle<io::Result<Vec<u8>>>;

pub(crate) struct ParallelGzWriter<W: Write> {
    out: W,
    level: u32,
    chunk: Vec<u8>,
    window: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
    jobs: VecDeque<Job>,
    max_jobs: usize,
    header_written: bool,
}

fn deflate_chunk(data: &[u8], dictionary: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !dictionary.is_empty() {
        c.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(64 << 10));
        }
        let consumed = usize::try_from(c.total_in()).map_err(io::Error::other)?;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = usize::try_from(c.total_in()).map_err(io::Error::other)? == data.len();
        // Done once all input is in and the flush left output space unused (or the stream
        // has ended); otherwise the output buffer filled up and more is pending.
        let done = match status {
            Status::StreamEnd => true,
            _ => !last && all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok(out);
        }
    }
}

fn join(job: Job) -> io::Result<Vec<u8>> {
    job.join()
        .map_err(|_| io::Error::other("gzip worker thread panicked"))?
}

impl<W: Write> ParallelGzWriter<W> {
    pub(crate) fn new(out: W, level: u32) -> Self {
        let threads = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        ParallelGzWriter {
            out,
            level: level.min(9),
            chunk: Vec::with_capacity(CHUNK),
            window: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total: 0,
            jobs: VecDeque::new(),
            max_jobs: threads * 2,
            header_written: false,
        }
    }

    fn write_ready(&mut self, keep: usize) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        while self.jobs.len() > keep {
            let Some(job) = self.jobs.pop_front() else {
                break;
            };
            self.out.write_all(&join(job)?)?;
        }
        Ok(())
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        let dictionary = std::mem::take(&mut self.window);
        self.window = data[data.len().saturating_sub(WINDOW)..].to_vec();
        if self.window.len() < WINDOW && !dictionary.is_empty() {
            // A short chunk still extends the previous window.
            let need = WINDOW - self.window.len();
            let mut w = dictionary[dictionary.len().saturating_sub(need)..].to_vec();
            w.extend_from_slice(&self.window);
            self.window = w;
        }
        let level = self.level;
        self.jobs.push_back(thread::spawn(move || {
            deflate_chunk(&data, &dictionary, level, last)
        }));
        self.write_ready(self.max_jobs - 1)
    }

    /// Ends the stream (last chunk, CRC-32 and size trailer) and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        self.write_ready(0)?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        // ISIZE is the length modulo 2^32 by definition.
        self.out.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        if self.chunk.len() == CHUNK {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunk boundaries must not depend on when callers flush; only finished chunks go out.
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        let mut state: u32 = 12345;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 {
                    (state >> 24) as u8
                } else {
                    b'a' + (i % 7) as u8
                }
            })
            .collect()
    }

    fn gz(data: &[u8], pieces: usize) -> Vec<u8> {
        let mut w = ParallelGzWriter::new(Vec::new(), 6);
        for part in data.chunks(data.len() / pieces + 1) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn decodes_as_one_gzip_member_at_chunk_edges() {
        for len in [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 17] {
            let data = sample(len);
            let packed = gz(&data, 3);
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(packed.as_slice())
                .read_to_end(&mut unpacked)
                .unwrap();
            assert_eq!(unpacked, data, "len {len}");
        }
    }

    #[test]
    fn output_does_not_depend_on_write_sizes() {
        let data = sample(CHUNK + 5000);
        assert_eq!(gz(&data, 1), gz(&data, 97));
    }

    fn cpu_seconds() -> f64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
        // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF covers all threads.
        let usage = unsafe {
            libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
            usage.assume_init()
        };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(usage.ru_utime) + t(usage.ru_stime)
    }

    #[test]
    #[ignore = "measurement; run in release with --ignored --nocapture"]
    fn speed_against_single_threaded_gzip() {
        let data = sample(64 << 20);
        let (wall, cpu) = (std::time::Instant::now(), cpu_seconds());
        let mut single = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        let (single_wall, single_cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let (wall, cpu) = (std::time::Instant::now(), cpu_seconds());
        let parallel = gz(&data, 64);
        let (par_wall, par_cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        println!(
            "64 MiB: single {single_wall:.2}s wall {single_cpu:.2}s cpu {} B; \
             parallel {par_wall:.2}s wall {par_cpu:.2}s cpu {} B",
            single.len(),
            parallel.len()
        );
    }
}
