//! Provisioning output for virtual devices: the `otpauth://totp/…` Key URI and
//! a QR-code PNG of it (AWS `CreateVirtualMFADevice` returns both as
//! `Base32StringSeed` and `QRCodePNG`, per the AWS IAM API Reference).
//!
//! URI shape (the de-facto "Key Uri Format" understood by Google
//! Authenticator, Authy, 1Password, …):
//!
//! ```text
//! otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
//! ```
//!
//! * the label is `issuer:account`, each part percent-encoded (RFC 3986 §2.1,
//!   UTF-8, uppercase hex), joined by a literal `:`; neither part may contain a
//!   `:` itself, since apps split the label on the first colon;
//! * `issuer` is repeated as a parameter because apps prefer the parameter over
//!   the label prefix;
//! * `secret` is unpadded uppercase RFC 4648 base32;
//! * `algorithm`, `digits`, `period` are always written, so a non-default
//!   device is never silently shown with the SHA1/6/30 defaults.
//!
//! The PNG is 1-bit grayscale, black modules on white, a 4-module quiet zone
//! (ISO/IEC 18004 minimum) and 8 px per module, error correction level M.
//!
//! SECURITY: both the URI and the PNG contain the seed. They are returned in
//! [`Zeroizing`] buffers and must not be logged; the PNG encoder and the QR
//! builder make internal copies that this module cannot wipe (best effort).

use std::fmt::Write as _;

use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

use super::seed::Seed;
use super::totp::TotpParams;

/// Pixels per QR module in the PNG.
pub const QR_SCALE: u32 = 8;
/// Light modules around the symbol (ISO/IEC 18004 asks for at least 4).
pub const QR_QUIET_ZONE: u32 = 4;
/// Longest accepted issuer or account name, in bytes (keeps the QR scannable).
pub const MAX_LABEL_PART_LEN: usize = 256;

/// Errors from building the URI or the QR image.
///
/// SECURITY: never carries the seed or the URI.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtpauthError {
    /// The issuer or account name is not usable in the label.
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidLabel {
        /// `issuer` or `account name`.
        field: &'static str,
        /// The offending value, with control characters escaped.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The data does not fit in a QR code.
    #[error("the otpauth URI is too long to fit in a QR code")]
    QrTooLarge,
    /// The PNG encoder failed.
    #[error("failed to encode the QR code as PNG")]
    Png,
}

fn check_label_part(field: &'static str, value: &str) -> Result<(), OtpauthError> {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > MAX_LABEL_PART_LEN {
        Some("must be at most 256 bytes")
    } else if value.contains(':') {
        Some("must not contain `:`, which separates issuer and account in the label")
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(OtpauthError::InvalidLabel {
            field,
            value: value
                .chars()
                .take(64)
                .flat_map(char::escape_debug)
                .collect(),
            reason,
        }),
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters and `@`
/// (legal unescaped in both path segments and queries, and what apps expect to
/// see in `user@example.com` account names). Space becomes `%20`, never `+`.
fn percent_encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Builds the `otpauth://totp/` Key URI for a device.
pub fn otpauth_uri(
    issuer: &str,
    account: &str,
    seed: &Seed,
    params: &TotpParams,
) -> Result<Zeroizing<String>, OtpauthError> {
    check_label_part("issuer", issuer)?;
    check_label_part("account name", account)?;
    let secret = seed.to_base32();
    // Reserve the final size up front so the secret-bearing string is never
    // reallocated (which would leave an unwiped copy behind).
    let cap = 64 + 6 * (issuer.len() + account.len()) + secret.len();
    let mut uri = Zeroizing::new(String::with_capacity(cap));
    uri.push_str("otpauth://totp/");
    percent_encode(&mut uri, issuer);
    uri.push(':');
    percent_encode(&mut uri, account);
    uri.push_str("?secret=");
    uri.push_str(&secret);
    uri.push_str("&issuer=");
    percent_encode(&mut uri, issuer);
    let _ = write!(
        uri,
        "&algorithm={}&digits={}&period={}",
        params.algorithm.as_str(),
        params.digits.get(),
        params.period.as_secs()
    );
    Ok(uri)
}

/// Renders `data` (normally an otpauth URI) as a QR-code PNG: 1-bit grayscale,
/// [`QR_QUIET_ZONE`] modules of margin, [`QR_SCALE`] px per module.
pub fn qr_png(data: &str) -> Result<Zeroizing<Vec<u8>>, OtpauthError> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|_| OtpauthError::QrTooLarge)?;
    let modules = code.width();
    let colors = Zeroizing::new(
        code.to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect::<Vec<bool>>(),
    );
    let quiet = QR_QUIET_ZONE as usize;
    let scale = QR_SCALE as usize;
    let side_modules = modules + 2 * quiet;
    let side_px = side_modules * scale;
    let side_u32 = u32::try_from(side_px).map_err(|_| OtpauthError::QrTooLarge)?;

    // 1-bit grayscale, rows packed MSB first: bit 0 = black (dark module),
    // bit 1 = white. `side_px` is a multiple of 8 (scale 8), but round up anyway.
    let row_bytes = side_px.div_ceil(8);
    let mut pixels = Zeroizing::new(vec![0xFFu8; row_bytes * side_px]);
    for (y, row) in pixels.chunks_exact_mut(row_bytes).enumerate() {
        let my = y / scale;
        if my < quiet || my >= quiet + modules {
            continue;
        }
        for x in 0..side_px {
            let mx = x / scale;
            if mx < quiet || mx >= quiet + modules {
                continue;
            }
            let idx = (my - quiet) * modules + (mx - quiet);
            if !colors.get(idx).copied().unwrap_or(false) {
                continue;
            }
            if let Some(byte) = row.get_mut(x / 8) {
                *byte &= !(0x80u8 >> (x % 8));
            }
        }
    }

    // A QR PNG of this style compresses to a few KiB; reserve generously so the
    // output is not reallocated while being written.
    let mut out = Zeroizing::new(Vec::with_capacity(64 * 1024));
    {
        let mut enc = png::Encoder::new(&mut *out, side_u32, side_u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        let mut writer = enc.write_header().map_err(|_| OtpauthError::Png)?;
        writer
            .write_image_data(&pixels)
            .map_err(|_| OtpauthError::Png)?;
        writer.finish().map_err(|_| OtpauthError::Png)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mfa::totp::{Algorithm, Digits, Period};

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

    fn rfc_seed() -> Seed {
        Seed::from_slice(b"12345678901234567890").unwrap()
    }

    /// Decodes a 1-bit grayscale PNG, expanded to 8 bits per pixel, and
    /// returns (width, height, pixels).
    fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut decoder = png::Decoder::new(bytes);
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        assert_eq!(reader.info().bit_depth, png::BitDepth::One);
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width as usize, info.height as usize, buf)
    }

    fn decode_qr(bytes: &[u8]) -> String {
        let (w, h, pixels) = decode_png(bytes);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "exactly one QR code expected");
        let (_meta, content) = grids[0].decode().unwrap();
        content
    }

    #[test]
    fn uri_default_aws_params() {
        let uri = otpauth_uri(
            "sts-broker",
            "alice@123456789012",
            &rfc_seed(),
            &TotpParams::AWS,
        )
        .unwrap();
        assert_eq!(
            &*uri,
            "otpauth://totp/sts-broker:alice@123456789012?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=sts-broker&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn uri_percent_encodes_label_and_issuer() {
        let p = TotpParams {
            algorithm: Algorithm::Sha256,
            digits: Digits::Eight,
            period: Period::Sixty,
        };
        let uri = otpauth_uri("ACME Co & Sons", "bob/dev+ops#1?x=ü", &rfc_seed(), &p).unwrap();
        assert_eq!(
            &*uri,
            "otpauth://totp/ACME%20Co%20%26%20Sons:bob%2Fdev%2Bops%231%3Fx%3D%C3%BC\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co%20%26%20Sons\
             &algorithm=SHA256&digits=8&period=60"
        );
    }

    #[test]
    fn uri_rejects_bad_labels() {
        let s = rfc_seed();
        let p = TotpParams::AWS;
        let e = otpauth_uri("Bad:Issuer", "alice", &s, &p).unwrap_err();
        assert!(matches!(
            e,
            OtpauthError::InvalidLabel {
                field: "issuer",
                ..
            }
        ));
        assert!(
            e.to_string()
                .starts_with("invalid issuer `Bad:Issuer`: must not contain")
        );
        assert!(matches!(
            otpauth_uri("Issuer", "a:b", &s, &p).unwrap_err(),
            OtpauthError::InvalidLabel {
                field: "account name",
                ..
            }
        ));
        assert!(otpauth_uri("", "alice", &s, &p).is_err());
        assert!(otpauth_uri("Issuer", "", &s, &p).is_err());
        let e = otpauth_uri("Iss\nuer", "alice", &s, &p).unwrap_err();
        assert!(e.to_string().contains("`Iss\\nuer`"), "{e}");
        assert!(otpauth_uri(&"x".repeat(257), "alice", &s, &p).is_err());
        assert!(otpauth_uri(&"x".repeat(256), "alice", &s, &p).is_ok());
    }

    #[test]
    fn qr_png_decodes_to_exact_uri() {
        let seed = Seed::generate().unwrap();
        let uri = otpauth_uri("sts-broker", "alice@123456789012", &seed, &TotpParams::AWS).unwrap();
        let png_bytes = qr_png(&uri).unwrap();
        assert_eq!(&png_bytes[..8], &PNG_SIGNATURE);
        assert_eq!(decode_qr(&png_bytes), *uri);
    }

    #[test]
    fn qr_png_geometry_and_quiet_zone() {
        let uri = otpauth_uri("ACME Co", "bob", &rfc_seed(), &TotpParams::AWS).unwrap();
        let png_bytes = qr_png(&uri).unwrap();
        let (w, h, pixels) = decode_png(&png_bytes);
        assert_eq!(w, h);
        assert_eq!(w % QR_SCALE as usize, 0);
        let modules = w / QR_SCALE as usize - 2 * QR_QUIET_ZONE as usize;
        assert_eq!((modules - 17) % 4, 0, "QR side is 17 + 4·version modules");
        let margin = (QR_QUIET_ZONE * QR_SCALE) as usize;
        for y in 0..h {
            for x in 0..w {
                let inside = (margin..w - margin).contains(&x) && (margin..h - margin).contains(&y);
                let p = pixels[y * w + x];
                assert!(p == 0 || p == 255);
                if !inside {
                    assert_eq!(p, 255, "quiet zone must be white at ({x},{y})");
                }
            }
        }
        // Top-left finder pattern corner is dark.
        assert_eq!(pixels[margin * w + margin], 0);
        assert_eq!(decode_qr(&png_bytes), *uri);
    }

    #[test]
    fn qr_too_large() {
        let big = "A".repeat(8000);
        assert_eq!(qr_png(&big).unwrap_err(), OtpauthError::QrTooLarge);
    }

    #[test]
    fn error_messages_are_lowercase() {
        crate::mfa::assert_lowercase_messages([OtpauthError::QrTooLarge, OtpauthError::Png]);
    }
}
