/// Shingling for time series: turns a stream of `dim`-vectors into overlapping
/// `(size * dim)`-vectors made of the last `size` inputs, oldest first.
#[derive(Clone, Debug)]
pub struct Shingle {
    dim: usize,
    size: usize,
    buf: Vec<f32>,
    seen: usize,
}

impl Shingle {
    /// A shingle of `size` consecutive `dim`-vectors.
    ///
    /// # Panics
    /// When `dim` or `size` is 0.
    pub fn new(dim: usize, size: usize) -> Self {
        assert!(dim >= 1, "shingle dimension must be at least 1");
        assert!(size >= 1, "shingle size must be at least 1");
        Shingle {
            dim,
            size,
            buf: vec![0.0; dim * size],
            seen: 0,
        }
    }

    /// Input dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of inputs per shingle.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Output dimension (`size * dim`).
    pub fn output_dim(&self) -> usize {
        self.dim * self.size
    }

    /// Whether enough inputs have been pushed to form a full shingle.
    pub fn is_full(&self) -> bool {
        self.seen >= self.size
    }

    /// Forget all inputs.
    pub fn reset(&mut self) {
        self.seen = 0;
        self.buf.iter_mut().for_each(|v| *v = 0.0);
    }

    /// Push the next input; returns the shingled vector once `size` inputs have been seen.
    ///
    /// # Panics
    /// When `x.len() != dim`.
    pub fn push(&mut self, x: &[f32]) -> Option<&[f32]> {
        assert_eq!(
            x.len(),
            self.dim,
            "shingle input has {} values, expected {}",
            x.len(),
            self.dim
        );
        let n = self.buf.len();
        self.buf.copy_within(self.dim.., 0);
        self.buf[n - self.dim..].copy_from_slice(x);
        self.seen = self.seen.saturating_add(1);
        if self.seen >= self.size {
            Some(&self.buf)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shingle_orders_oldest_first() {
        let mut s = Shingle::new(2, 3);
        assert!(s.push(&[1.0, 1.5]).is_none());
        assert!(s.push(&[2.0, 2.5]).is_none());
        assert_eq!(
            s.push(&[3.0, 3.5]).unwrap(),
            &[1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
        );
        assert_eq!(
            s.push(&[4.0, 4.5]).unwrap(),
            &[2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
        );
        let mut one = Shingle::new(1, 1);
        assert_eq!(one.push(&[7.0]).unwrap(), &[7.0]);
    }
}
