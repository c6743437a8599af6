//! The handshake's frames and proofs.

use super::*;

fn transcript() -> Transcript {
    Transcript {
        version: 9,
        role: Role::Driver,
        client: [1; NONCE_LEN],
        server: [2; NONCE_LEN],
    }
}

#[test]
fn proofs_depend_on_the_token_the_side_and_every_nonce() {
    let t = transcript();
    let p = t.proof("secret", Side::Client);
    assert!(t.verify("secret", Side::Client, &p));
    assert!(!t.verify("Secret", Side::Client, &p));
    assert!(
        !t.verify("secret", Side::Server, &p),
        "a proof is not reflected"
    );
    let mut other = t;
    other.server[0] ^= 1;
    assert!(
        !other.verify("secret", Side::Client, &p),
        "a proof is not replayed"
    );
    let mut other = t;
    other.role = Role::Node;
    assert!(!other.verify("secret", Side::Client, &p));
}

#[test]
fn the_hello_and_refusal_keep_their_indices_and_the_version_comes_first() {
    let hello = Handshake::Hello {
        version: 77,
        role: Role::Client,
        nonce: [0; NONCE_LEN],
    };
    let bytes = hello.encode().unwrap();
    assert_eq!(hello_prefix(&bytes), Some((0, Some(77))));
    let refused = Handshake::Refused {
        refusal: Refusal::Unauthorized,
        reason: "no".into(),
    };
    assert_eq!(refused.encode().unwrap()[0], 2);
    assert_eq!(hello_prefix(&[4, 0]), Some((4, None)));
    assert_eq!(hello_prefix(&[]), None);
    let welcome = Handshake::Welcome {
        welcome: Welcome {
            version: 9,
            node_id: postcard::from_bytes::<NodeId>(&[3]).unwrap(),
            head: true,
        },
        proof: [9; PROOF_LEN],
    };
    assert_eq!(
        Handshake::decode(&welcome.encode().unwrap()).unwrap(),
        welcome
    );
}

#[test]
fn nothing_in_a_hello_or_a_proof_is_the_token() {
    let token = "a-very-recognisable-token-0123456789";
    let t = transcript();
    for frame in [
        Handshake::Hello {
            version: 9,
            role: Role::Driver,
            nonce: t.client,
        },
        Handshake::Proof {
            proof: t.proof(token, Side::Client),
        },
    ] {
        let bytes = frame.encode().unwrap();
        assert!(!bytes
            .windows(8)
            .any(|w| token.as_bytes().windows(8).any(|x| x == w)));
    }
}
