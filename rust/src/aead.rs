//! ChaCha20-Poly1305 (RFC 8439, 12-byte nonce: the Noise cipher) and
//! XChaCha20-Poly1305 (libsodium's `crypto_aead_xchacha20poly1305_ietf`).
//! Outputs are `ciphertext ‖ tag`. XChaCha is built exactly as its draft
//! defines it, from two library primitives: HChaCha20 (chacha20 crate)
//! derives a subkey from the first 16 nonce bytes, then ChaCha20-Poly1305
//! (ring) runs under it with nonce `0⁴ ‖ nonce[16..24]`.

use chacha20::cipher::consts::U10;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

use crate::error::{Error, Result};

pub const KEY_SIZE: usize = 32;
pub const NONCE_SIZE: usize = 24;
pub const IETF_NONCE_SIZE: usize = 12;
pub const TAG_SIZE: usize = 16;

fn ietf_key(key: &[u8; KEY_SIZE]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte key"))
}

fn xchacha_key(
    key: &[u8; KEY_SIZE],
    nonce: &[u8; NONCE_SIZE],
) -> (LessSafeKey, [u8; IETF_NONCE_SIZE]) {
    let hnonce: [u8; 16] = nonce[..16].try_into().expect("16 bytes");
    let sub: [u8; KEY_SIZE] = chacha20::hchacha::<U10>(key.into(), &hnonce.into()).into();
    let mut ietf = [0u8; IETF_NONCE_SIZE];
    ietf[4..].copy_from_slice(&nonce[16..]);
    (ietf_key(&sub), ietf)
}

fn seal_with(key: &LessSafeKey, nonce: [u8; IETF_NONCE_SIZE], associated: &[u8], buf: &mut [u8]) {
    let (text, tag) = buf.split_at_mut(buf.len() - TAG_SIZE);
    let t = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated),
            text,
        )
        .expect("ChaCha20-Poly1305 only fails past 256 GiB");
    tag.copy_from_slice(t.as_ref());
}

/// Open `ciphertext ‖ tag`, given as consecutive `parts` (a frame may arrive in
/// several reads): the text is gathered into `out`, which must be exactly the
/// plaintext's length, then decrypted there. Gathering is the copy a contiguous
/// input needs anyway, so split input costs nothing extra.
fn open_with(
    key: &LessSafeKey,
    nonce: [u8; IETF_NONCE_SIZE],
    associated: &[u8],
    parts: &[&[u8]],
    out: &mut [u8],
) -> Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let split = total.checked_sub(TAG_SIZE).ok_or(Error::Decryption)?;
    if out.len() != split {
        return Err(Error::Decryption);
    }
    let mut tag = [0u8; TAG_SIZE];
    let mut pos = 0;
    for part in parts {
        let end = pos + part.len();
        if pos < split {
            let text_end = end.min(split);
            out[pos..text_end].copy_from_slice(&part[..text_end - pos]);
        }
        if end > split {
            let tag_start = pos.max(split);
            tag[tag_start - split..end - split].copy_from_slice(&part[tag_start - pos..]);
        }
        pos = end;
    }
    key.open_in_place_separate_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(associated),
        Tag::from(tag),
        out,
        0..,
    )
    .map(|_| ())
    .map_err(|_| Error::Decryption)
}

/// XChaCha20-Poly1305: encrypt `buf[..len - TAG_SIZE]` in place and write the tag into the last 16 bytes.
pub fn seal_in_place(
    key: &[u8; KEY_SIZE],
    nonce: &[u8; NONCE_SIZE],
    associated: &[u8],
    buf: &mut [u8],
) {
    let (key, nonce) = xchacha_key(key, nonce);
    seal_with(&key, nonce, associated, buf);
}

/// XChaCha20-Poly1305: check the tag at the end of `sealed` and decrypt the rest into `out`.
pub fn open_into(
    key: &[u8; KEY_SIZE],
    nonce: &[u8; NONCE_SIZE],
    associated: &[u8],
    sealed: &[u8],
    out: &mut [u8],
) -> Result<()> {
    open_parts_into(key, nonce, associated, &[sealed], out)
}

/// XChaCha20-Poly1305 over `ciphertext ‖ tag` split into consecutive `parts`.
pub fn open_parts_into(
    key: &[u8; KEY_SIZE],
    nonce: &[u8; NONCE_SIZE],
    associated: &[u8],
    parts: &[&[u8]],
    out: &mut [u8],
) -> Result<()> {
    let (key, nonce) = xchacha_key(key, nonce);
    open_with(&key, nonce, associated, parts, out)
}

/// ChaCha20-Poly1305 (RFC 8439), in place like [`seal_in_place`].
pub fn ietf_seal_in_place(
    key: &[u8; KEY_SIZE],
    nonce: &[u8; IETF_NONCE_SIZE],
    associated: &[u8],
    buf: &mut [u8],
) {
    seal_with(&ietf_key(key), *nonce, associated, buf);
}

/// ChaCha20-Poly1305 (RFC 8439), like [`open_into`].
pub fn ietf_open_into(
    key: &[u8; KEY_SIZE],
    nonce: &[u8; IETF_NONCE_SIZE],
    associated: &[u8],
    sealed: &[u8],
    out: &mut [u8],
) -> Result<()> {
    ietf_open_parts_into(key, nonce, associated, &[sealed], out)
}

/// ChaCha20-Poly1305 (RFC 8439) over `ciphertext ‖ tag` split into consecutive `parts`.
pub fn ietf_open_parts_into(
    key: &[u8; KEY_SIZE],
    nonce: &[u8; IETF_NONCE_SIZE],
    associated: &[u8],
    parts: &[&[u8]],
    out: &mut [u8],
) -> Result<()> {
    open_with(&ietf_key(key), *nonce, associated, parts, out)
}

pub fn seal(
    key: &[u8; KEY_SIZE],
    nonce: &[u8; NONCE_SIZE],
    associated: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; plaintext.len() + TAG_SIZE];
    buf[..plaintext.len()].copy_from_slice(plaintext);
    seal_in_place(key, nonce, associated, &mut buf);
    buf
}

pub fn open(
    key: &[u8; KEY_SIZE],
    nonce: &[u8; NONCE_SIZE],
    associated: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let mut out = vec![0u8; sealed.len().saturating_sub(TAG_SIZE)];
    open_into(key, nonce, associated, sealed, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ietf_open_parts_matches_contiguous_at_every_split() {
        let key = [3u8; 32];
        let nonce = [5u8; IETF_NONCE_SIZE];
        let text: Vec<u8> = (0..40u8).collect();
        let mut sealed = text.clone();
        sealed.extend_from_slice(&[0u8; TAG_SIZE]);
        ietf_seal_in_place(&key, &nonce, b"ad", &mut sealed);
        for a in 0..=sealed.len() {
            for b in a..=sealed.len() {
                let parts = [&sealed[..a], &sealed[a..b], &sealed[b..]];
                let mut out = vec![0u8; text.len()];
                ietf_open_parts_into(&key, &nonce, b"ad", &parts, &mut out).unwrap();
                assert_eq!(out, text);
            }
        }
        let mut bad = sealed.clone();
        bad[45] ^= 1;
        let mut out = vec![0u8; text.len()];
        let parts = [&bad[..20], &bad[20..]];
        assert!(ietf_open_parts_into(&key, &nonce, b"ad", &parts, &mut out).is_err());
        let mut short = vec![0u8; text.len() - 1];
        assert!(ietf_open_parts_into(&key, &nonce, b"ad", &[&sealed[..]], &mut short).is_err());
    }

    #[test]
    fn round_trip_and_tamper() {
        let key = [7u8; 32];
        let nonce = [9u8; 24];
        let sealed = seal(&key, &nonce, b"ad", b"attack at dawn");
        assert_eq!(sealed.len(), 14 + TAG_SIZE);
        assert_eq!(
            open(&key, &nonce, b"ad", &sealed).unwrap(),
            b"attack at dawn"
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(open(&key, &nonce, b"ad", &bad), Err(Error::Decryption));
        }
        assert_eq!(open(&key, &nonce, b"aD", &sealed), Err(Error::Decryption));
        assert_eq!(
            open(&key, &nonce, b"ad", &sealed[..10]),
            Err(Error::Decryption)
        );
        let mut other_nonce = nonce;
        other_nonce[20] ^= 1;
        assert_eq!(
            open(&key, &other_nonce, b"ad", &sealed),
            Err(Error::Decryption)
        );
    }

    #[test]
    fn rfc8439_test_vector() {
        // RFC 8439 §2.8.2.
        let key: Vec<u8> = (0x80..0xa0).collect();
        let nonce = [
            0x07, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
        ];
        let ad = [
            0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        ];
        let msg = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let mut buf = msg.to_vec();
        buf.extend_from_slice(&[0; TAG_SIZE]);
        ietf_seal_in_place(key[..].try_into().unwrap(), &nonce, &ad, &mut buf);
        assert_eq!(&buf[..8], &[0xd3, 0x1a, 0x8d, 0x34, 0x64, 0x8e, 0x60, 0xdb]);
        let tag = [
            0x1a, 0xe1, 0x0b, 0x59, 0x4f, 0x09, 0xe2, 0x6a, 0x7e, 0x90, 0x2e, 0xcb, 0xd0, 0x60,
            0x06, 0x91,
        ];
        assert_eq!(&buf[msg.len()..], &tag);
        let mut out = vec![0; msg.len()];
        ietf_open_into(key[..].try_into().unwrap(), &nonce, &ad, &buf, &mut out).unwrap();
        assert_eq!(&out[..], &msg[..]);
        buf[3] ^= 1;
        assert!(ietf_open_into(key[..].try_into().unwrap(), &nonce, &ad, &buf, &mut out).is_err());
    }

    #[test]
    fn draft_xchacha_test_vector() {
        // draft-irtf-cfrg-xchacha-03, appendix A.3.1.
        let key: Vec<u8> = (0x80..0xa0).collect();
        let nonce: Vec<u8> = (0x40..0x58).collect();
        let ad = [
            0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        ];
        let msg = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let sealed = seal(
            key[..].try_into().unwrap(),
            nonce[..].try_into().unwrap(),
            &ad,
            msg,
        );
        assert_eq!(
            &sealed[..8],
            &[0xbd, 0x6d, 0x17, 0x9d, 0x3e, 0x83, 0xd4, 0x3b]
        );
        let tag = [
            0xc0, 0x87, 0x59, 0x24, 0xc1, 0xc7, 0x98, 0x79, 0x47, 0xde, 0xaf, 0xd8, 0x78, 0x0a,
            0xcf, 0x49,
        ];
        assert_eq!(&sealed[sealed.len() - 16..], &tag);
    }
}
