//! Little-endian on-disk struct support: a field trait and a macro that
//! declares a struct with explicit byte offsets, checked at compile time.

/// A fixed-size little-endian field of an on-disk struct.
pub trait LeField: Sized {
    const SIZE: usize;
    fn zero() -> Self;
    fn put(&self, out: &mut [u8]);
    fn get(b: &[u8]) -> Self;
}

macro_rules! le_int {
    ($($t:ty),*) => {$(
        impl LeField for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn zero() -> Self { 0 }
            fn put(&self, out: &mut [u8]) { out[..Self::SIZE].copy_from_slice(&self.to_le_bytes()); }
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..Self::SIZE]);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
le_int!(u8, u16, u32, u64);

impl<T: LeField + Copy, const N: usize> LeField for [T; N] {
    const SIZE: usize = T::SIZE * N;
    fn zero() -> Self {
        [T::zero(); N]
    }
    fn put(&self, out: &mut [u8]) {
        for (i, v) in self.iter().enumerate() {
            v.put(&mut out[i * T::SIZE..]);
        }
    }
    fn get(b: &[u8]) -> Self {
        let mut a = [T::zero(); N];
        for (i, v) in a.iter_mut().enumerate() {
            *v = T::get(&b[i * T::SIZE..]);
        }
        a
    }
}

/// Panics at compile time (used in `const _`) unless the fields are sorted,
/// do not overlap and end within `size`.
pub const fn check_layout(fields: &[(usize, usize)], size: usize) {
    let mut i = 0;
    let mut end = 0;
    while i < fields.len() {
        assert!(fields[i].0 >= end, "overlapping or unsorted field");
        end = fields[i].0 + fields[i].1;
        i += 1;
    }
    assert!(end <= size, "field past end of struct");
}

/// Declare an on-disk little-endian struct: every field with its type and
/// byte offset (from the spec). Generates `SIZE`, `OFF_<field>`-style
/// constants via `offset_of`, `encode`, `decode` and a layout check.
macro_rules! le_struct {
    ($(#[$m:meta])* pub struct $name:ident [$size:expr] {
        $($(#[$fm:meta])* $field:ident : $ty:ty = $off:expr),* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(non_snake_case)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: <$ty as $crate::le::LeField>::zero()),* }
            }
        }

        #[allow(dead_code)]
        impl $name {
            pub const SIZE: usize = $size;
            /// Byte offset of a field by name (for checksum exclusions and tests).
            pub fn offset_of(field: &str) -> Option<usize> {
                match field { $(stringify!($field) => Some($off),)* _ => None }
            }
            /// Write the fields into `out[..SIZE]`; bytes not covered by a
            /// field are left untouched (callers start from zeroes).
            pub fn encode(&self, out: &mut [u8]) {
                assert!(out.len() >= Self::SIZE);
                $( $crate::le::LeField::put(&self.$field, &mut out[$off..]); )*
            }
            pub fn to_bytes(&self) -> Vec<u8> {
                let mut v = vec![0u8; Self::SIZE];
                self.encode(&mut v);
                v
            }
            pub fn decode(b: &[u8]) -> Self {
                assert!(b.len() >= Self::SIZE);
                $name { $($field: <$ty as $crate::le::LeField>::get(&b[$off..])),* }
            }
        }

        const _: () = $crate::le::check_layout(
            &[$(($off, <$ty as $crate::le::LeField>::SIZE)),*], $size);
    };
}
pub(crate) use le_struct;

#[cfg(test)]
mod tests {
    le_struct! {
        pub struct Demo [16] {
            a: u16 = 0,
            b: u32 = 4,
            c: [u8; 3] = 8,
            d: u8 = 15,
        }
    }

    #[test]
    fn encode_decode_table() {
        let cases = [
            (
                Demo {
                    a: 0x0102,
                    b: 0x03040506,
                    c: [7, 8, 9],
                    d: 10,
                },
                [2u8, 1, 0, 0, 6, 5, 4, 3, 7, 8, 9, 0, 0, 0, 0, 10],
            ),
            (Demo::default(), [0u8; 16]),
        ];
        for (d, want) in cases {
            assert_eq!(d.to_bytes(), want.to_vec());
            assert_eq!(Demo::decode(&want), d);
        }
        assert_eq!(Demo::offset_of("b"), Some(4));
        assert_eq!(Demo::offset_of("zz"), None);
    }
}
