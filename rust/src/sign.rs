//! Plain ed25519 (RFC 8032) via ed25519-dalek, verified strictly: the same
//! rules as libsodium (canonical `s`, no small-order key or `R`, exact `R`).

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rayon::prelude::*;

use crate::error::{invalid, Result};

pub type PublicKey = [u8; 32];
pub type SignatureBytes = [u8; 64];

/// Batches at least this long are split across the rayon pool.
const PARALLEL_BATCH: usize = 64;

pub fn signing_key(seed: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(seed)
}

pub fn sign(key: &SigningKey, message: &[u8]) -> SignatureBytes {
    key.sign(message).to_bytes()
}

/// The key, if it decodes and is not of small order.
fn strict_key(public_key: &PublicKey) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(public_key)
        .ok()
        .filter(|k| !k.is_weak())
}

/// The checks `verify_strict` makes beyond the equation, for use before a batch.
fn strict_signature(signature: &SignatureBytes) -> Option<Signature> {
    let s: [u8; 32] = signature[32..].try_into().expect("32 bytes");
    if bool::from(Scalar::from_canonical_bytes(s).is_none()) {
        return None;
    }
    let r = CompressedEdwardsY(signature[..32].try_into().expect("32 bytes")).decompress()?;
    if r.is_small_order() {
        return None;
    }
    Some(Signature::from_bytes(signature))
}

pub fn verify(public_key: &PublicKey, message: &[u8], signature: &SignatureBytes) -> bool {
    match strict_key(public_key) {
        Some(key) => key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok(),
        None => false,
    }
}

fn verify_chunk(keys: &[PublicKey], messages: &[&[u8]], signatures: &[SignatureBytes]) -> bool {
    let mut vks = Vec::with_capacity(keys.len());
    let mut sigs = Vec::with_capacity(keys.len());
    for (key, sig) in keys.iter().zip(signatures) {
        match (strict_key(key), strict_signature(sig)) {
            (Some(k), Some(s)) => {
                vks.push(k);
                sigs.push(s);
            }
            _ => return false,
        }
    }
    ed25519_dalek::verify_batch(messages, &sigs, &vks).is_ok()
}

/// True when every signature verifies. One randomised batch equation per
/// chunk, after the per-signature strictness checks.
pub fn verify_batch(
    keys: &[PublicKey],
    messages: &[&[u8]],
    signatures: &[SignatureBytes],
) -> Result<bool> {
    if keys.len() != messages.len() || keys.len() != signatures.len() {
        return Err(invalid(format!(
            "batch of {} keys, {} messages and {} signatures",
            keys.len(),
            messages.len(),
            signatures.len()
        )));
    }
    if keys.len() < 2 * PARALLEL_BATCH {
        return Ok(verify_chunk(keys, messages, signatures));
    }
    let chunk = keys
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(PARALLEL_BATCH);
    Ok(keys
        .par_chunks(chunk)
        .zip(messages.par_chunks(chunk))
        .zip(signatures.par_chunks(chunk))
        .all(|((k, m), s)| verify_chunk(k, m, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair(i: u8) -> SigningKey {
        signing_key(&[i; 32])
    }

    #[test]
    fn sign_verify_round_trip() {
        let key = keypair(1);
        let pk = key.verifying_key().to_bytes();
        let sig = sign(&key, b"hello");
        assert!(verify(&pk, b"hello", &sig));
        assert!(!verify(&pk, b"hellO", &sig));
        assert!(!verify(
            &keypair(2).verifying_key().to_bytes(),
            b"hello",
            &sig
        ));
    }

    #[test]
    fn rfc8032_test_vector_1() {
        let seed: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let key = signing_key(&seed);
        let pk: [u8; 32] = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(key.verifying_key().to_bytes(), pk);
        let sig: [u8; 64] = hex(concat!(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ));
        assert_eq!(sign(&key, b""), sig);
        assert!(verify(&pk, b"", &sig));
    }

    #[test]
    fn strictness_rejects_malleated_and_small_order() {
        let key = keypair(3);
        let pk = key.verifying_key().to_bytes();
        let sig = sign(&key, b"m");
        // s + l: same equation mod l, but not canonical.
        let l: [u8; 32] = hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut malleated = sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let v = malleated[32 + i] as u16 + l[i] as u16 + carry;
            malleated[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(!verify(&pk, b"m", &malleated));
        assert!(!verify_batch(&[pk, pk], &[b"m", b"m"], &[sig, malleated]).unwrap());
        let identity: [u8; 32] =
            hex("0100000000000000000000000000000000000000000000000000000000000000");
        assert!(!verify(&identity, b"m", &sig));
        assert!(!verify_batch(&[identity], &[b"m"], &[sig]).unwrap());
    }

    #[test]
    fn batches_accept_only_when_all_are_valid() {
        let n = 300;
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| signing_key(&[(i % 251) as u8 + 1; 32]))
            .collect();
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
        let msgs: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("message {i}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let mut sigs: Vec<SignatureBytes> =
            keys.iter().zip(&refs).map(|(k, m)| sign(k, m)).collect();
        assert!(verify_batch(&pks, &refs, &sigs).unwrap());
        assert!(verify_batch(&[], &[], &[]).unwrap());
        sigs[257][5] ^= 1;
        assert!(!verify_batch(&pks, &refs, &sigs).unwrap());
        assert!(verify_batch(&pks[..2], &refs[..1], &sigs[..2]).is_err());
    }

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
