#!/usr/bin/env python3
"""creditmesh from Python with grpcio, on the addresses and PKI of `creditmesh dev`:

1. an agency files with its regulator (建档): uploads its documents, submits its application;
2. the demo agency pushes a credit record to the regional platform;
3. a reader verifies a notice of the public register: its inclusion proof against the
   checkpoint, and the checkpoint's signature against the log's published key.

The stubs are generated from the project's proto/ at start. Settings come from the
environment (defaults: `creditmesh dev`'s): CREDITMESH_EXAMPLE_PKI, CREDITMESH_EXAMPLE_NODE, CREDITMESH_EXAMPLE_PUBLIC,
CREDITMESH_EXAMPLE_AGENCY_CERT and CREDITMESH_EXAMPLE_AGENCY_USCC (the agency that files; its certificate is
issued with `creditmesh pki issue`, see examples/README.md).
"""

import base64
import hashlib
import json
import os
import pathlib
import sys
import tempfile

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"
PKI = pathlib.Path(os.environ.get("CREDITMESH_EXAMPLE_PKI", "creditmesh-data/pki"))
NODE = os.environ.get("CREDITMESH_EXAMPLE_NODE", "127.0.0.1:7443")
PUBLIC = os.environ.get("CREDITMESH_EXAMPLE_PUBLIC", "127.0.0.1:8080")
AGENCY_CERT = os.environ.get("CREDITMESH_EXAMPLE_AGENCY_CERT", "agency-example")
AGENCY_USCC = os.environ.get("CREDITMESH_EXAMPLE_AGENCY_USCC", "91650102MA7XJ0011B")


def generate_stubs():
    out = tempfile.mkdtemp(prefix="creditmesh-stubs-")
    files = [str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto")]
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(args + files) != 0:
        sys.exit("could not generate the stubs")
    sys.path.insert(0, out)


generate_stubs()
from creditmesh.datapush.v1 import datapush_pb2, datapush_pb2_grpc  # noqa: E402
from creditmesh.disclosure.v1 import disclosure_pb2, disclosure_pb2_grpc  # noqa: E402
from creditmesh.filing.v1 import filing_pb2, filing_pb2_grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402


def node_channel(cert_name):
    """Mutual TLS to the node listener, as the holder of PKI/cert_name.pem."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=(PKI / "ca.pem").read_bytes(),
        private_key=(PKI / f"{cert_name}.key").read_bytes(),
        certificate_chain=(PKI / f"{cert_name}.pem").read_bytes(),
    )
    return grpc.secure_channel(NODE, creds)


def public_channel():
    """Server TLS to the public listener, no certificate: anyone."""
    creds = grpc.ssl_channel_credentials(root_certificates=(PKI / "ca.pem").read_bytes())
    return grpc.secure_channel(PUBLIC, creds)


def file_application():
    filing = filing_pb2_grpc.FilingServiceStub(node_channel(AGENCY_CERT))

    def upload(kind, title):
        data = f"%PDF-1.7\n% {AGENCY_USCC}: {title}\n".encode()
        parts = [
            filing_pb2.UploadDocumentRequest(
                metadata=filing_pb2.DocumentMetadata(
                    kind=kind, file_name=f"{title}.pdf", size_bytes=len(data)
                )
            ),
            filing_pb2.UploadDocumentRequest(chunk=data),
        ]
        return filing.UploadDocument(iter(parts)).document.sha256

    kinds = filing_pb2.DocumentKind
    doc = lambda kind, title: {"sha256": upload(kinds.Value(kind), title)}  # noqa: E731
    form = json.loads((HERE.parent / "application.json").read_text())
    form.update(uscc=AGENCY_USCC, registered_division=AGENCY_USCC[2:8])
    request = json_format.ParseDict(
        {
            "request_id": f"example-{AGENCY_USCC}",
            "form": form,
            "application_form_document": doc("DOCUMENT_KIND_APPLICATION_FORM", "application form"),
            "business_licence": doc("DOCUMENT_KIND_BUSINESS_LICENCE", "business licence"),
            "articles_of_association": doc("DOCUMENT_KIND_ARTICLES_OF_ASSOCIATION", "articles"),
            "senior_management_register": doc("DOCUMENT_KIND_SENIOR_MANAGEMENT_REGISTER", "managers"),
            "technical_staff_register": doc("DOCUMENT_KIND_TECHNICAL_STAFF_REGISTER", "staff"),
            "annual_credit_service_report": doc("DOCUMENT_KIND_ANNUAL_CREDIT_SERVICE_REPORT", "report"),
            "credit_commitment": {
                "letter": doc("DOCUMENT_KIND_CREDIT_COMMITMENT_LETTER", "commitment"),
                "signed_by_legal_representative": True,
                "sealed": True,
            },
            "fee_schedule": doc("DOCUMENT_KIND_FEE_SCHEDULE", "fee schedule"),
            "model_documents": [doc("DOCUMENT_KIND_MODEL_DOCUMENT", "model contract")],
        },
        filing_pb2.SubmitFilingRequest(),
    )
    filed = filing.SubmitFiling(request).filing
    status = filing_pb2.FilingStatus.Name(filed.status)
    print(
        f"filed: {filed.filing_id} {status}, reviewed by {filed.reviewing_tenant}"
        f" by {filed.review_deadline.due_date}"
    )


def push_record():
    push = datapush_pb2_grpc.DataPushServiceStub(node_channel("agency"))
    record = datapush_pb2.CreditRecord(
        record_key="example-python-1",
        subject_kind=datapush_pb2.SUBJECT_KIND_PERSON,
        subject_identifier="650102198001011234",
        category="loan-repayment",
        content=json.dumps({"amount_due": 80, "due_on": "2026-11-30", "days_overdue": 3}).encode(),
        collected_on="2026-12-01",
        source=datapush_pb2.RecordSource(
            provider="Urumqi Commercial Bank", legal_basis="written consent of 2026-03-02"
        ),
    )
    for ack in push.PushRecords(iter([datapush_pb2.PushRecordsRequest(record=record)])):
        result = datapush_pb2.PushResult.Name(ack.result)
        if ack.result == datapush_pb2.PUSH_RESULT_REJECTED:
            sys.exit(f"pushed: {ack.record_key} rejected: {ack.error}")
        print(f"pushed: {ack.record_key} {result}, version {ack.version}")


def verify_notice(sequence):
    register = disclosure_pb2_grpc.DisclosureServiceStub(public_channel())
    answer = register.GetNoticeProof(disclosure_pb2.GetNoticeProofRequest(sequence=sequence))
    notice = answer.notice
    leaf = hashlib.sha256(b"\x00" + notice.salt + notice.content).digest()
    origin, size, root = checkpoint_signed_by(answer.checkpoint, read_vkeys())
    if size != answer.tree_size:
        sys.exit(f"the checkpoint covers {size} notices, the proof {answer.tree_size}")
    if inclusion_root(leaf, notice.sequence, size, list(answer.proof)) != root:
        sys.exit(f"notice {notice.sequence} is not in the signed tree")
    print(f"valid: notice {notice.sequence} is in the tree of {size} notices signed by {origin}")
    print(f"  {notice.text}")


def read_vkeys():
    """The log's verifier keys as published beside the PKI: name, key hash, Ed25519 key."""
    keys = []
    for line in (PKI / "register-log.vkey").read_text().split():
        name, key_hash, key = line.split("+", 2)
        raw = base64.b64decode(key)
        keys.append((name, bytes.fromhex(key_hash), Ed25519PublicKey.from_public_bytes(raw[1:])))
    return keys


def checkpoint_signed_by(note, keys):
    """The checkpoint's origin, size and root, once a known key's signature verifies
    (C2SP signed-note and tlog-checkpoint)."""
    text, _, signatures = note.partition("\n\n")
    text += "\n"
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            continue
        name, blob = line[2:].rsplit(" ", 1)
        blob = base64.b64decode(blob)
        for key_name, key_hash, key in keys:
            if key_name == name and blob[:4] == key_hash:
                key.verify(blob[4:], text.encode())  # raises when it does not verify
                origin, size, root = text.splitlines()[:3]
                return origin, int(size), base64.b64decode(root)
    sys.exit("no signature by the log's key")


def inclusion_root(leaf, index, size, proof):
    """RFC 9162, 2.1.3.2: the root an inclusion proof leads to."""
    node = lambda left, right: hashlib.sha256(b"\x01" + left + right).digest()  # noqa: E731
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            while fn & 1 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def verify_first_and_newest():
    register = disclosure_pb2_grpc.DisclosureServiceStub(public_channel())
    size = register.GetRegisterHead(disclosure_pb2.GetRegisterHeadRequest()).size
    for sequence in sorted({0, size - 1}):
        verify_notice(sequence)


if __name__ == "__main__":
    file_application()
    push_record()
    verify_first_and_newest()
