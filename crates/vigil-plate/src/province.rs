//! Which two-digit province codes appear on Vietnamese plates.
//!
//! One table, so that the grammar, the tests and anyone auditing a rejected
//! read look at the same list.

/// Every province code a plate may carry, ascending.
///
/// The codes 11–99 that are assigned to a province or city (Lạng Sơn = 12;
/// Hà Nội = 29–33 and 40; Hồ Chí Minh City = 41 and 50–59), plus 80, which is
/// not a province but the code of central government agencies (and of
/// diplomatic plates registered centrally, e.g. `80NG-...`). Codes missing
/// here (13, 42, 44–46, 87, 91, 96, and everything below 11) are unassigned:
/// a read that starts with one is a misread, not a plate.
pub const ASSIGNED_PROVINCE_CODES: [u8; 81] = [
    11, 12, 14, 15, 16, 17, 18, 19, //
    20, 21, 22, 23, 24, 25, 26, 27, 28, 29, //
    30, 31, 32, 33, 34, 35, 36, 37, 38, 39, //
    40, 41, 43, 47, 48, 49, //
    50, 51, 52, 53, 54, 55, 56, 57, 58, 59, //
    60, 61, 62, 63, 64, 65, 66, 67, 68, 69, //
    70, 71, 72, 73, 74, 75, 76, 77, 78, 79, //
    80, 81, 82, 83, 84, 85, 86, 88, 89, //
    90, 92, 93, 94, 95, 97, 98, 99,
];

/// The code of central government agencies; plates with it are flagged
/// [`SpecialSeries::CentralAgency`](crate::SpecialSeries::CentralAgency) so
/// the owning agency is notified (violations are flagged, never suppressed).
pub const CENTRAL_AGENCY_CODE: u8 = 80;

/// Whether `code` is a province code a real plate can carry.
pub fn is_assigned_province(code: u8) -> bool {
    ASSIGNED_PROVINCE_CODES.binary_search(&code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique_so_binary_search_works() {
        assert!(ASSIGNED_PROVINCE_CODES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn unassigned_codes_are_rejected() {
        for code in [0, 10, 13, 42, 44, 45, 46, 87, 91, 96, 100] {
            assert!(!is_assigned_province(code), "{code}");
        }
    }

    #[test]
    fn lang_son_hanoi_hcmc_and_central_agencies_are_assigned() {
        for code in [12, 29, 30, 33, 40, 41, 50, 59, 80] {
            assert!(is_assigned_province(code), "{code}");
        }
    }
}
