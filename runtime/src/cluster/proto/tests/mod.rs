//! The protocol's encodings against the messages they stand for, and values crossing a
//! loopback connection in one frame or in pieces.

use tokio::net::TcpStream;

use super::Connection;

mod encoding;
mod transfer;

/// Two authenticated ends of a loopback TCP connection.
async fn connected_pair() -> (Connection, Connection) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(address), listener.accept());
    let mut a = Connection::new(a.unwrap()).unwrap();
    let mut b = Connection::new(b.unwrap().0).unwrap();
    a.authenticated();
    b.authenticated();
    (a, b)
}

/// `len` bytes that differ from those of another `seed`.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
