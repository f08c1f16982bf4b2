//! The [`TranslatorFactory`] over the whole translation matrix.

use crate::anthropic::{ChatToAnthropic, MessagesPassthrough, MessagesToOpenAi, Platform};
use crate::openai::media::{MediaBackend, MediaPassthrough};
use crate::openai::{DEFAULT_AZURE_API_VERSION, Flavor, OpenAiTranslator, Operation};
use aigw_core::api::Endpoint;
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, Error, Result, Translator, TranslatorFactory, VersionedSchema};

/// Builds the translator for every supported (client endpoint × backend schema) pair.
///
/// ```
/// use aigw_core::api::Endpoint;
/// use aigw_core::translate::TranslatorSpec;
/// use aigw_core::{ApiSchema, TranslatorFactory, VersionedSchema};
/// use aigw_providers::ProviderFactory;
/// let schema = VersionedSchema::new(ApiSchema::Anthropic);
/// let spec = TranslatorSpec { endpoint: Endpoint::ChatCompletions, schema: &schema, model_override: None };
/// assert!(ProviderFactory.translator(&spec).is_ok());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ProviderFactory;

fn openai_flavor(schema: &VersionedSchema) -> Option<Flavor> {
    match schema.name {
        ApiSchema::OpenAI => Some(Flavor::OpenAI {
            prefix: schema.prefix.clone(),
        }),
        ApiSchema::AzureOpenAI => Some(Flavor::Azure {
            version: schema
                .version
                .clone()
                .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_owned()),
        }),
        _ => None,
    }
}

fn anthropic_platform(schema: &VersionedSchema) -> Option<Platform> {
    crate::anthropic::handoff::platform(schema)
}

fn unsupported(endpoint: Endpoint, schema: ApiSchema) -> Error {
    Error::untranslatable(
        format!("endpoint {}", endpoint.operation_name()),
        schema.as_str(),
        "this client API is not supported on this backend",
    )
}

impl TranslatorFactory for ProviderFactory {
    fn translator(&self, spec: &TranslatorSpec<'_>) -> Result<Box<dyn Translator>> {
        let schema = spec.schema;
        let ovr = spec.model_override;
        let name = schema.name;
        if matches!(
            spec.endpoint,
            Endpoint::Responses | Endpoint::ResponsesInputTokens | Endpoint::ResponsesStored
        ) {
            return crate::responses::translator(spec, self);
        }
        if matches!(
            spec.endpoint,
            Endpoint::ImageGenerations
                | Endpoint::ImageEdits
                | Endpoint::AudioSpeech
                | Endpoint::AudioTranscriptions
                | Endpoint::AudioTranslations
                | Endpoint::Rerank
                | Endpoint::Tokenize
        ) {
            let backend = match name {
                ApiSchema::OpenAI => MediaBackend::OpenAI {
                    prefix: schema.prefix.clone(),
                },
                ApiSchema::AzureOpenAI => MediaBackend::Azure {
                    version: schema.version.clone().unwrap_or_default(),
                },
                ApiSchema::Cohere => MediaBackend::Cohere {
                    version: schema.version.clone(),
                },
                // Translated cells: images and rerank on Bedrock and Vertex AI, tokenize
                // over the backends' count-tokens APIs.
                _ if spec.endpoint == Endpoint::Tokenize => {
                    let count = self.translator(&TranslatorSpec {
                        endpoint: Endpoint::CountTokens,
                        ..*spec
                    })?;
                    return Ok(Box::new(crate::tokenize::TokenizeOverCount::new(
                        count,
                        name.as_str(),
                        ovr,
                    )));
                }
                ApiSchema::AWSBedrock | ApiSchema::AWSAnthropic => {
                    return crate::bedrock::translator(spec);
                }
                ApiSchema::GCPVertexAI => return crate::vertex::translator(spec),
                _ => return Err(unsupported(spec.endpoint, name)),
            };
            return Ok(Box::new(MediaPassthrough::new(
                spec.endpoint,
                backend,
                ovr,
            )?));
        }
        if let (Some(flavor), Some(op)) = (
            openai_flavor(schema),
            match spec.endpoint {
                Endpoint::ChatCompletions => Some(Operation::ChatCompletions),
                Endpoint::Completions => Some(Operation::Completions),
                Endpoint::Embeddings => Some(Operation::Embeddings),
                _ => None,
            },
        ) {
            return Ok(Box::new(OpenAiTranslator::new(op, flavor, ovr)));
        }
        match (spec.endpoint, name) {
            (Endpoint::Messages, ApiSchema::OpenAI | ApiSchema::AzureOpenAI) => {
                let flavor =
                    openai_flavor(schema).ok_or_else(|| unsupported(spec.endpoint, name))?;
                Ok(Box::new(MessagesToOpenAi::new(flavor, ovr)))
            }
            (Endpoint::ChatCompletions, ApiSchema::Anthropic | ApiSchema::GCPAnthropic) => {
                let p =
                    anthropic_platform(schema).ok_or_else(|| unsupported(spec.endpoint, name))?;
                Ok(Box::new(ChatToAnthropic::new(p, ovr)))
            }
            (Endpoint::Messages, ApiSchema::Anthropic | ApiSchema::GCPAnthropic) => {
                let p =
                    anthropic_platform(schema).ok_or_else(|| unsupported(spec.endpoint, name))?;
                Ok(Box::new(MessagesPassthrough::new(p, ovr)))
            }
            (Endpoint::CountTokens, ApiSchema::Anthropic | ApiSchema::GCPAnthropic) => {
                let p =
                    anthropic_platform(schema).ok_or_else(|| unsupported(spec.endpoint, name))?;
                Ok(Box::new(MessagesPassthrough::count_tokens(p, ovr)))
            }
            // Bedrock (Converse, Titan/Cohere embeddings), Claude on Bedrock InvokeModel
            // and Gemini/embeddings on Vertex AI live in their own modules.
            (_, ApiSchema::AWSBedrock | ApiSchema::AWSAnthropic) => {
                crate::bedrock::translator(spec)
            }
            (_, ApiSchema::GCPVertexAI) => crate::vertex::translator(spec),
            (Endpoint::Models | Endpoint::AnthropicModels, _) => Err(Error::internal(
                "model lists are answered by the gateway and need no translator",
            )),
            _ => Err(unsupported(spec.endpoint, name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_build(endpoint: Endpoint, name: ApiSchema) -> Result<Box<dyn Translator>> {
        let schema = VersionedSchema::new(name);
        ProviderFactory.translator(&TranslatorSpec {
            endpoint,
            schema: &schema,
            model_override: None,
        })
    }

    #[test]
    fn matrix_cells_owned_here_are_built() {
        use ApiSchema::*;
        use Endpoint::*;
        for (e, s) in [
            (ChatCompletions, OpenAI),
            (ChatCompletions, AzureOpenAI),
            (ChatCompletions, Anthropic),
            (ChatCompletions, GCPAnthropic),
            (Completions, OpenAI),
            (Embeddings, OpenAI),
            (Embeddings, AzureOpenAI),
            (Messages, Anthropic),
            (Messages, GCPAnthropic),
            (Messages, OpenAI),
            (Messages, AzureOpenAI),
            (CountTokens, Anthropic),
            (CountTokens, GCPAnthropic),
            (ChatCompletions, AWSBedrock),
            (Messages, AWSAnthropic),
            (ChatCompletions, GCPVertexAI),
        ] {
            assert!(try_build(e, s).is_ok(), "{e:?} → {s:?}");
        }
    }

    #[test]
    fn unsupported_cells_are_422() {
        for (e, s) in [
            (Endpoint::Embeddings, ApiSchema::Anthropic),
            (Endpoint::Completions, ApiSchema::Anthropic),
            (Endpoint::CountTokens, ApiSchema::OpenAI),
            (Endpoint::ChatCompletions, ApiSchema::Cohere),
        ] {
            let err = try_build(e, s).err().unwrap();
            assert_eq!(
                err.status(),
                http::StatusCode::UNPROCESSABLE_ENTITY,
                "{e:?} → {s:?}"
            );
        }
    }
}
