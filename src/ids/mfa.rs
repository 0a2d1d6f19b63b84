//! What MFA requests carry: device serial numbers, one-time codes and virtual device names.
//!
//! One alphabet for serials, AWS's `serialNumberType` (IAM API Reference, `EnableMFADevice`):
//! 9 to 256 characters of `[\w+=/:,.@-]`, `\w` read as ASCII word characters. Both the request
//! members and the hardware seed-file import (`crate::mfa::import`) check serials with
//! [`is_serial_char`].

use super::{AccountId, IamPath, ValidationError, checked, is_name_char, required};
use std::fmt;
use zeroize::Zeroizing;

/// Shortest and longest serial number AWS accepts.
pub const SERIAL_LEN: std::ops::RangeInclusive<usize> = 9..=256;

/// Whether `c` may appear in an MFA serial number.
pub fn is_serial_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=/:,.@-".contains(c)
}

text_id!(
    /// A device serial number: a hardware token's (`GAHT12345678`) or a virtual device's ARN.
    MfaSerial
);

impl MfaSerial {
    pub fn parse(v: &str) -> Result<Self, ValidationError> {
        checked(
            "serialNumber",
            v,
            |v| SERIAL_LEN.contains(&v.chars().count()) && v.chars().all(is_serial_char),
            r"Member must satisfy regular expression pattern: [\w+=/:,.@-]+ with length 9 to 256",
        )
        .map(Self)
    }

    /// The serial (ARN) of a virtual device: `arn:aws:iam::ACCOUNT:mfa{path}{name}`.
    pub fn virtual_device(
        account: &AccountId,
        path: &IamPath,
        name: &VirtualMfaDeviceName,
    ) -> Self {
        Self(format!(
            "arn:aws:iam::{account}:mfa{}{}",
            path.as_str(),
            name.0
        ))
    }
}

/// A one-time code as a request carries it: 6 ASCII digits (AWS's `authenticationCodeType` and
/// `tokenCodeType`), or 8 for the 8-digit hardware tokens the seed-file import accepts. Whether
/// it has the right length for a given device is decided when the device is known.
///
/// SECURITY: the code is never shown: `Debug` is redacted, there is no `Display`, errors do not
/// echo it, and the buffer is wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenCode(Zeroizing<String>);

impl fmt::Debug for TokenCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCode(<redacted>)")
    }
}

impl TokenCode {
    /// Parses the member `field` (`tokenCode`, `authenticationCode1`, …).
    pub fn parse(field: &'static str, v: &str) -> Result<Self, ValidationError> {
        let v = required(field, v)?;
        if (v.len() == 6 || v.len() == 8) && v.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(Zeroizing::new(v.to_owned())))
        } else {
            Err(ValidationError::redacted(
                field,
                r"Member must satisfy regular expression pattern: [\d]+ and have length 6 (8 for 8-digit tokens)",
            ))
        }
    }

    /// The digits, for the TOTP check only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

text_id!(
    /// The name of a new virtual MFA device: the characters of IAM names; AWS sets no maximum, 226
    /// keeps the device's ARN within a serial number's 256.
    VirtualMfaDeviceName
);

impl VirtualMfaDeviceName {
    pub fn parse(v: &str) -> Result<Self, ValidationError> {
        checked(
            "virtualMFADeviceName",
            v,
            |v| v.len() <= 226 && v.chars().all(is_name_char),
            r"Member must satisfy regular expression pattern: [\w+=,.@-]+",
        )
        .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_use_aws_alphabet_and_length() {
        for good in [
            "GAHT12345678",
            "arn:aws:iam::123456789012:mfa/JaneDoeMFA",
            "a+b=c/d:e,f.g@h-i_j",
            &"S".repeat(9),
            &"S".repeat(256),
        ] {
            assert_eq!(MfaSerial::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "S".repeat(8),
            "S".repeat(257),
            "GAHT1234;678".to_owned(),
            "GAHT 12345678".to_owned(),
            "GAHT12345é78".to_owned(),
        ] {
            let e = MfaSerial::parse(&bad).unwrap_err();
            assert_eq!(e.field, "serialNumber");
            assert!(e.expected.contains("length 9 to 256"), "{e}");
        }
        let e = MfaSerial::parse("").unwrap_err();
        assert_eq!(e.expected, "Member must not be null");
        // The comma is in AWS's alphabet (the seed file cannot carry one: it separates fields).
        assert!(is_serial_char(','));
        assert!(!is_serial_char(' '));
    }

    #[test]
    fn virtual_device_serials_are_arns() {
        let a = AccountId::parse("123456789012").unwrap();
        let p = IamPath::parse("path", "/eng/").unwrap();
        let n = VirtualMfaDeviceName::parse("alice-phone").unwrap();
        assert_eq!(
            MfaSerial::virtual_device(&a, &p, &n).as_str(),
            "arn:aws:iam::123456789012:mfa/eng/alice-phone"
        );
        assert!(VirtualMfaDeviceName::parse(&"n".repeat(226)).is_ok());
        assert!(VirtualMfaDeviceName::parse(&"n".repeat(227)).is_err());
        assert!(VirtualMfaDeviceName::parse("a/b").is_err());
        let e = VirtualMfaDeviceName::parse("").unwrap_err();
        assert_eq!(e.field, "virtualMFADeviceName");
    }

    #[test]
    fn token_codes_are_digits_and_never_shown() {
        assert_eq!(
            TokenCode::parse("tokenCode", "012345").unwrap().expose(),
            "012345"
        );
        assert!(TokenCode::parse("tokenCode", "01234567").is_ok());
        for bad in [
            "12345",
            "1234567",
            "123456789",
            "12345a",
            "١٢٣٤٥٦",
            " 123456",
        ] {
            let e = TokenCode::parse("authenticationCode2", bad).unwrap_err();
            assert_eq!(e.field, "authenticationCode2");
            assert!(!e.to_string().contains(bad.trim()), "{e}");
        }
        let e = TokenCode::parse("tokenCode", "").unwrap_err();
        assert_eq!(e.expected, "Member must not be null");
        let code = TokenCode::parse("tokenCode", "987654").unwrap();
        assert!(!format!("{code:?}").contains("987654"));
    }
}
