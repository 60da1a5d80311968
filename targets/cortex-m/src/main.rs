//! arca on a Cortex-M4: decodes the `.arca` stream linked into the image and writes the text to
//! the host over semihosting (stdout), then exits with status 0, or 1 after an error message on
//! stderr.
//!
//! The codec and the stream checks are `arca-embedded`'s, the same code `arca compress` uses on
//! a PC; the network is `src/model.rs`, emitted from the `text-embedded` bundle by
//! `arca-codegen emit` (weights in flash, fixed buffers). Nothing here allocates: one block of
//! output (16 KiB, the `text-nn` default) is decoded into a buffer on the stack and written only
//! after its CRC-32 matched.
//!
//! Statistics go to stderr: bytes, instructions per byte (SysTick under `qemu -icount shift=0`
//! counts one tick per 40 instructions; see `run.sh`) and the stack's high-water mark.
#![no_std]
#![no_main]

mod model;

use core::fmt::Write as _;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, hio};

/// The stream, linked in by `build.rs` from `ARCA_STREAM`.
static STREAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/stream.arca"));

/// Largest block this firmware decodes (the output buffer, on the stack).
const BLOCK_BUFFER: usize = 16 << 10;

/// Stack paint, to measure the high-water mark.
const PAINT: u32 = 0xA5C3_5A3C;

/// SysTick wraps (each 2^24 ticks).
static WRAPS: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" {
    /// End of .bss/.uninit: the lowest address the stack may grow to (cortex-m-rt).
    static __sheap: u32;
    /// Initial stack pointer, the top of RAM (cortex-m-rt).
    static _stack_start: u32;
}

#[entry]
fn main() -> ! {
    let painted = paint_stack();
    let mut err = hio::hstderr().ok();
    let Some(mut out) = hio::hstdout().ok() else {
        debug::exit(debug::EXIT_FAILURE);
        #[allow(clippy::empty_loop)]
        loop {}
    };
    let clock = Clock::start();
    let result = decode(&mut out);
    let ticks = clock.ticks();
    let used = stack_used(painted);
    match result {
        Ok(bytes) => {
            if let Some(e) = err.as_mut() {
                // 40 instructions per tick: 1 ns per instruction (-icount shift=0) against the
                // 25 MHz SysTick clock of the MPS2.
                let instructions = ticks * 40;
                let per_byte = instructions.checked_div(bytes).unwrap_or(0);
                let _ = writeln!(
                    e,
                    "arca-firmware: decoded {bytes} bytes with {} ({} stream bytes); {instructions} instructions ({per_byte} per byte); stack high-water {used} bytes",
                    model::MODEL_NAME,
                    STREAM.len(),
                );
            }
            debug::exit(debug::EXIT_SUCCESS);
        }
        Err(msg) => {
            if let Some(e) = err.as_mut() {
                let _ = writeln!(e, "arca-firmware: {msg}");
            }
            debug::exit(debug::EXIT_FAILURE);
        }
    }
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A short message (fits a fixed buffer) for what went wrong.
struct Message {
    buf: [u8; 200],
    len: usize,
}

impl core::fmt::Write for Message {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl core::fmt::Display for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(core::str::from_utf8(&self.buf[..self.len]).unwrap_or("error"))
    }
}

/// Decodes [`STREAM`] to `out`; the number of bytes, or the error's message.
#[inline(never)]
fn decode(out: &mut hio::HostStream) -> Result<u64, Message> {
    let mut buf = [0u8; BLOCK_BUFFER];
    let mut msg = Message {
        buf: [0; 200],
        len: 0,
    };
    if STREAM.is_empty() {
        let _ = write!(msg, "no stream linked (build with ARCA_STREAM=FILE.arca)");
        return Err(msg);
    }
    let r = arca_embedded::stream::decode(
        STREAM,
        model::MODEL_ID,
        model::Model::new(),
        &mut buf,
        |block| out.write_all(block).map_err(|()| "semihosting write failed"),
    );
    r.map_err(|e| {
        let _ = write!(msg, "{e}");
        msg
    })
}

/// Cycles of SysTick (the core clock) with its wraps counted by the exception.
struct Clock(Option<cortex_m::peripheral::SYST>);

impl Clock {
    fn start() -> Self {
        let Some(p) = cortex_m::Peripherals::take() else {
            return Clock(None);
        };
        let mut syst = p.SYST;
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Clock(Some(syst))
    }

    fn ticks(&self) -> u64 {
        if self.0.is_none() {
            return 0;
        }
        loop {
            let w = WRAPS.load(Ordering::SeqCst);
            let cur = cortex_m::peripheral::SYST::get_current();
            if WRAPS.load(Ordering::SeqCst) == w {
                return u64::from(w) * (1 << 24) + u64::from(0x00FF_FFFF - cur);
            }
        }
    }
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::SeqCst);
}

/// Fills the free stack below the current frame with [`PAINT`]; returns the painted range.
#[inline(never)]
fn paint_stack() -> (usize, usize) {
    // `__sheap` and `_stack_start` are linker symbols: only their addresses are taken.
    let (bottom, top) = (
        core::ptr::addr_of!(__sheap) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    );
    // Leave the current frame and a margin alone.
    let sp = cortex_m::register::msp::read() as usize;
    let end = sp.saturating_sub(256) & !3;
    let mut at = (bottom + 3) & !3;
    while at < end {
        // SAFETY: [bottom, sp - 256) is RAM between the end of .bss and the live stack, which
        // nothing else uses (there is no heap); writes are word aligned.
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
    (bottom, top)
}

/// Bytes of stack used at most since [`paint_stack`]: from the top down to the lowest word
/// whose paint was overwritten.
fn stack_used((bottom, top): (usize, usize)) -> usize {
    let mut at = (bottom + 3) & !3;
    while at < top {
        // SAFETY: reads word-aligned RAM inside the stack region painted above.
        if unsafe { core::ptr::read_volatile(at as *const u32) } != PAINT {
            break;
        }
        at += 4;
    }
    top - at
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    if let Ok(mut e) = hio::hstderr() {
        let _ = e.write_str("arca-firmware: hard fault\n");
    }
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[exception]
unsafe fn DefaultHandler(irq: i16) {
    if let Ok(mut e) = hio::hstderr() {
        let _ = writeln!(e, "arca-firmware: unexpected exception {irq}");
    }
    debug::exit(debug::EXIT_FAILURE);
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    if let Ok(mut e) = hio::hstderr() {
        let _ = e.write_str("arca-firmware: panic\n");
    }
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
