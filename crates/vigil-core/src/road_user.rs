//! The road-user types that rules reason about, whatever labels a model uses.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoadUserClass {
    Car,
    Motorbike,
    Bus,
    Truck,
    Bicycle,
    Person,
}

impl RoadUserClass {
    pub const ALL: [RoadUserClass; 6] = [
        RoadUserClass::Car,
        RoadUserClass::Motorbike,
        RoadUserClass::Bus,
        RoadUserClass::Truck,
        RoadUserClass::Bicycle,
        RoadUserClass::Person,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoadUserClass::Car => "car",
            RoadUserClass::Motorbike => "motorbike",
            RoadUserClass::Bus => "bus",
            RoadUserClass::Truck => "truck",
            RoadUserClass::Bicycle => "bicycle",
            RoadUserClass::Person => "person",
        }
    }

    /// All names, comma-separated, for error messages.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for RoadUserClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown road-user class {0:?}")]
pub struct UnknownClass(pub String);

impl FromStr for RoadUserClass {
    type Err = UnknownClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownClass(s.to_owned()))
    }
}
