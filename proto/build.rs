//! Compiles the contracts with protox, so no system `protoc` is needed.

use std::path::PathBuf;

const FILES: &[&str] = &[
    "creditmesh/common/v1/common.proto",
    "creditmesh/events/v1/events.proto",
    "creditmesh/events/v1/kinds.proto",
    "creditmesh/filing/v1/filing.proto",
    "creditmesh/review/v1/review.proto",
    "creditmesh/disclosure/v1/disclosure.proto",
    "creditmesh/complaints/v1/complaints.proto",
    "creditmesh/complaints/v2/referrals.proto",
    "creditmesh/datapush/v1/datapush.proto",
];

const EVENT_KINDS: &[&str] = &[
    "FilingSubmitted",
    "ChangeSubmitted",
    "AnnualReportSubmitted",
    "DeregistrationRequested",
    "FilingRevokedForNoReport",
    "FilingDecided",
    "ReviewForwarded",
    "FilingRevoked",
    "ChangeDecided",
    "DeregistrationDecided",
    "Disposal",
    "DeregistrationCompleted",
    "DeadlineRecomputed",
    "SpotCheckDrawn",
    "ComplaintSubmitted",
    "ComplaintResolved",
    "FiledDocument",
    "FeeItem",
    "PublicFacts",
    "RegisterChanged",
    "ObjectionOverdue",
    "SubjectTold",
    "NamedPrincipal",
    "FilingTransferred",
    "RevocationReferred",
    "ReferralDeclined",
    "ReferralReceived",
    "PlaceSupervised",
    "PlaceReported",
    "AgencyHandedOver",
    "HandedRisk",
    "HandedTask",
    "HandedEntry",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=creditmesh");
    let fds = protox::compile(FILES, ["."])?;
    std::fs::write(
        out.join("creditmesh_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    let mut config = tonic_prost_build::configure().generate_default_stubs(true);
    // Event kinds serialise to JSON too: the credit file keeps an event's fields readable.
    for kind in EVENT_KINDS {
        config = config.type_attribute(
            format!("creditmesh.events.v1.{kind}"),
            "#[derive(serde::Serialize)]",
        );
    }
    config.compile_fds(fds)?;
    Ok(())
}
