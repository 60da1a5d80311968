//! What the models of a block may look at: the bytes before the current position, all of them
//! (revisions 1 and 2) or the last [`WINDOW`] (revision 3), in a buffer that is either the whole
//! block or a ring.

/// Revision 3's window: how far back its models look, hence the memory a decoder needs for
/// history (a ring of this many bytes), and the length of the segments a block is checked in.
pub const WINDOW: usize = 16 << 10;

/// The bytes of a block before the current position that the models may look at: all of them
/// (revisions 1 and 2), or the last [`WINDOW`] (revision 3), held in a buffer that is either
/// the whole block or a ring.
#[derive(Clone, Copy)]
pub struct History<'a> {
    pub(crate) ring: &'a [u8],
    pub(crate) pos: usize,
    pub(crate) window: usize,
}

impl History<'_> {
    /// The position of the byte being coded (the number of bytes before it).
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The byte at position `i` of the block, if it is before the current one and in the
    /// window.
    #[inline]
    pub fn get(&self, i: usize) -> Option<u8> {
        if i < self.pos && self.pos - i <= self.window {
            self.ring.get(i % self.ring.len()).copied()
        } else {
            None
        }
    }

    /// The byte `k` positions back (`back(1)` is the previous byte), if in the window.
    #[inline]
    pub fn back(&self, k: usize) -> Option<u8> {
        self.pos.checked_sub(k).and_then(|i| self.get(i))
    }
}
