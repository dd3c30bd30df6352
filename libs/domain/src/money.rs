//! The one rule for currency codes, shared by every aggregate that records
//! money, so a code accepted by one service is accepted by all.

use crate::error::DomainError;

/// Checks that `code` is an ISO 4217 code as the API writes it: exactly three
/// upper-case ASCII letters (`JPY`, `USD`). Lower-case or padded input is
/// refused rather than repaired, so a stored code is always the code sent.
/// The error names `field`.
pub fn check_currency(field: &str, code: &str) -> Result<(), DomainError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            "must be an ISO 4217 code: three upper-case letters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::check_currency;

    #[test]
    fn three_upper_case_letters_only() {
        for ok in ["JPY", "USD", "EUR"] {
            assert!(check_currency("currency", ok).is_ok(), "{ok}");
        }
        for bad in ["", "jpy", "Jpy", "JP", "JPYY", " JPY", "JP1", "ＪＰＹ"] {
            let err = check_currency("budget.currency", bad).unwrap_err();
            assert!(
                matches!(&err, crate::DomainError::InvalidArgument { field, .. } if field == "budget.currency"),
                "{bad:?}: {err:?}"
            );
        }
    }
}
