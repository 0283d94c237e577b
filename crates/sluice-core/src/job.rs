//! Job lifecycle names shared by every facade (CodePipeline's JobStatus spelling).

use std::fmt;
use std::str::FromStr;

/// `Created → Queued → Dispatched → InProgress → Succeeded | Failed | TimedOut`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Created,
    Queued,
    Dispatched,
    InProgress,
    Succeeded,
    Failed,
    TimedOut,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Created,
        JobStatus::Queued,
        JobStatus::Dispatched,
        JobStatus::InProgress,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "Created",
            JobStatus::Queued => "Queued",
            JobStatus::Dispatched => "Dispatched",
            JobStatus::InProgress => "InProgress",
            JobStatus::Succeeded => "Succeeded",
            JobStatus::Failed => "Failed",
            JobStatus::TimedOut => "TimedOut",
        }
    }

    /// Whether no further transition can leave this status.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::TimedOut)
    }

    /// Whether a worker holds the job: claimed (and perhaps acknowledged), not finished.
    pub fn is_handed_out(self) -> bool {
        matches!(self, JobStatus::Dispatched | JobStatus::InProgress)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown job status {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
        }
        assert!("Running".parse::<JobStatus>().is_err());
        assert!(JobStatus::TimedOut.is_final());
        assert!(!JobStatus::Dispatched.is_final());
    }
}
