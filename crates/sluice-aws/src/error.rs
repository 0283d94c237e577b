//! AWS error shapes: one [`AwsError`] per failed request, and the single place where engine
//! errors become wire error codes.

use sluice_core::pipeline::StructureError;
use sluice_engine::Error as EngineError;

/// An error as an AWS client sees it: HTTP status, `__type` code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        AwsError { status, code, message: message.into() }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, "SerializationException", message)
    }

    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(400, "UnknownOperationException", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLargeException",
            format!("Request body exceeds the limit of {limit} bytes"),
        )
    }

    pub fn internal() -> Self {
        Self::new(500, "InternalFailure", "The request processing has failed because of an unknown error")
    }
}

impl From<EngineError> for AwsError {
    fn from(err: EngineError) -> Self {
        let (code, status) = match &err {
            EngineError::Validation(_) => ("ValidationException", 400),
            EngineError::Structure(StructureError::Structure(_)) => ("InvalidStructureException", 400),
            EngineError::Structure(StructureError::Action(_)) => ("InvalidActionDeclarationException", 400),
            EngineError::PipelineNotFound(_) => ("PipelineNotFoundException", 400),
            EngineError::PipelineVersionNotFound(_) => ("PipelineVersionNotFoundException", 400),
            EngineError::PipelineNameInUse(_) => ("PipelineNameInUseException", 400),
            EngineError::ActionTypeNotFound(_) => ("ActionTypeNotFoundException", 400),
            EngineError::ActionTypeExists(_) => ("ActionTypeAlreadyExistsException", 400),
            EngineError::ResourceNotFound(_) => ("ResourceNotFoundException", 400),
            EngineError::InvalidTags(_) => ("InvalidTagsException", 400),
            EngineError::TooManyTags(_) => ("TooManyTagsException", 400),
            EngineError::InvalidNextToken(_) => ("InvalidNextTokenException", 400),
            EngineError::AccessDenied(_) => ("AccessDeniedException", 400),
            EngineError::JobNotFound(_) => ("JobNotFoundException", 400),
            EngineError::InvalidNonce(_) => ("InvalidNonceException", 400),
            EngineError::InvalidClientToken(_) => ("InvalidClientTokenException", 400),
            EngineError::InvalidJobState(_) => ("InvalidJobStateException", 400),
            EngineError::InvalidApprovalToken(_) => ("InvalidApprovalTokenException", 400),
            EngineError::ApprovalAlreadyCompleted(_) => ("ApprovalAlreadyCompletedException", 400),
            EngineError::PipelineExecutionNotFound(_) => ("PipelineExecutionNotFoundException", 400),
            EngineError::NotStoppable(_) => ("PipelineExecutionNotStoppableException", 400),
            EngineError::StageNotFound(_) => ("StageNotFoundException", 400),
            EngineError::DuplicatedStopRequest(_) => ("DuplicatedStopRequestException", 400),
            EngineError::StageNotRetryable(_) => ("StageNotRetryableException", 400),
            EngineError::NotLatestPipelineExecution(_) => ("NotLatestPipelineExecutionException", 400),
            EngineError::Conflict(_) => ("ConflictException", 400),
            EngineError::DocumentAlreadyExists(_) => ("DocumentAlreadyExists", 400),
            EngineError::InvalidDocument(_) => ("InvalidDocument", 400),
            EngineError::InvalidDocumentVersion(_) => ("InvalidDocumentVersion", 400),
            EngineError::InvalidDocumentContent(_) => ("InvalidDocumentContent", 400),
            EngineError::DuplicateDocumentContent(_) => ("DuplicateDocumentContent", 400),
            EngineError::DuplicateDocumentVersionName(_) => ("DuplicateDocumentVersionName", 400),
            EngineError::InvalidDocumentOperation(_) => ("InvalidDocumentOperation", 400),
            EngineError::InvalidFilterKey(_) => ("InvalidFilterKey", 400),
            EngineError::AutomationDefinitionNotFound(_) => ("AutomationDefinitionNotFoundException", 400),
            EngineError::AutomationDefinitionVersionNotFound(_) => {
                ("AutomationDefinitionVersionNotFoundException", 400)
            }
            EngineError::InvalidAutomationExecutionParameters(_) => {
                ("InvalidAutomationExecutionParametersException", 400)
            }
            EngineError::AutomationExecutionNotFound(_) => ("AutomationExecutionNotFoundException", 400),
            EngineError::InvalidAutomationStatusUpdate(_) => ("InvalidAutomationStatusUpdateException", 400),
            EngineError::InvalidAutomationSignal(_) => ("InvalidAutomationSignalException", 400),
            EngineError::AutomationStepNotFound(_) => ("AutomationStepNotFoundException", 400),
            EngineError::InvalidFilterValue(_) => ("InvalidFilterValue", 400),
            EngineError::IdempotentParameterMismatch(_) => ("IdempotentParameterMismatch", 400),
            EngineError::NoSuchKey(_)
            | EngineError::InvalidBucketName(_)
            | EngineError::EntityTooLarge(_) => ("ValidationException", 400),
            EngineError::Internal(_) | EngineError::Store(_) => {
                tracing::error!(error = ?err, "internal failure");
                return AwsError::internal();
            }
        };
        AwsError::new(status, code, err.to_string())
    }
}

impl AwsError {
    /// The SSM facade's names where they differ from CodePipeline's for the same engine error.
    pub fn from_ssm(err: EngineError) -> Self {
        let code = match &err {
            EngineError::InvalidNextToken(_) => "InvalidNextToken",
            EngineError::Conflict(_) => "TooManyUpdates",
            EngineError::InvalidTags(_) => "InvalidTag",
            EngineError::TooManyTags(_) => "TooManyTagsError",
            _ => return err.into(),
        };
        AwsError::new(400, code, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_message() {
        let err: AwsError = EngineError::Internal("/var/lib/sluice/sluice.db is locked".into()).into();
        assert_eq!((err.status, err.code), (500, "InternalFailure"));
        assert!(!err.message.contains("sluice.db"));
    }

    #[test]
    fn ssm_names_its_own_errors() {
        let err = AwsError::from_ssm(EngineError::InvalidNextToken("bad".into()));
        assert_eq!((err.status, err.code), (400, "InvalidNextToken"));
        let err = AwsError::from_ssm(EngineError::InvalidDocument("no doc".into()));
        assert_eq!((err.code, err.message.as_str()), ("InvalidDocument", "no doc"));
        let err = AwsError::from_ssm(EngineError::Store(sluice_store::Error::UnsupportedUrl));
        assert_eq!((err.status, err.code), (500, "InternalFailure"));
    }

    #[test]
    fn domain_errors_keep_their_message() {
        let err: AwsError = EngineError::PipelineNotFound("no pipeline p".into()).into();
        assert_eq!(
            (err.status, err.code, err.message.as_str()),
            (400, "PipelineNotFoundException", "no pipeline p")
        );
    }
}
